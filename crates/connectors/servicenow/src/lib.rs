//! ServiceNow ticket system (in progress).
