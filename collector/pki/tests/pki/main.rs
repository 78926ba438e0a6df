//! The PKI attacked from outside: files and modes `init` leaves, identities read from hostile
//! certificates, CSRs that ask for more than they get, and CA files that are not what they say.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod enroll;
mod harness;
mod identity;
mod init;
mod load;
