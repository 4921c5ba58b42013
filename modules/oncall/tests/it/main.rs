//! Integration tests of the on-call module against the store.
