//! Escalation when nobody acknowledges.
