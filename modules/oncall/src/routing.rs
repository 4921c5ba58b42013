//! Automatic routing of alerts to the people on duty.
