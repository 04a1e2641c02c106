//! Invoking cargo and reading its JSON messages.
