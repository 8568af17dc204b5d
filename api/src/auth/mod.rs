pub mod guards;
pub mod password;
pub mod token;

pub use guards::{Authenticated, Customer, DoorPass, Organizer, bearer_token};
pub use token::TokenKeys;
