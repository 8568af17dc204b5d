pub mod guards;
pub mod password;
pub mod token;

pub use guards::{Authenticated, Customer, DoorPass, Organizer};
pub use token::TokenKeys;
