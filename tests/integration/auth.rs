//! Authentication and authorisation over every RPC.
