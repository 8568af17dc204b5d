pub mod guards;
pub mod password;
pub mod token;

pub use guards::{Authenticated, Customer, Organizer};
pub use token::TokenKeys;
