//! Email address syntax, as the mailer (lettre) accepts it: the same rules from
//! the same crates (`email_address` for the local part and the host name, `idna`
//! for international domains, or an IP literal), without the mailer itself, so
//! the api validates addresses without compiling an SMTP client. The worker's
//! tests hold the two to agreement.

use std::net::IpAddr;

use email_address::EmailAddress;

/// Whether the mailer will accept this address, so that an account can never
/// exist that the worker cannot write to.
pub fn is_valid_address(address: &str) -> bool {
    let mut parts = address.rsplitn(2, '@');
    let (Some(domain), Some(user)) = (parts.next(), parts.next()) else {
        return false;
    };
    EmailAddress::is_valid_local_part(user) && is_valid_domain(domain)
}

fn is_valid_domain(domain: &str) -> bool {
    is_valid_ascii_domain(domain)
        || idna::domain_to_ascii(domain).is_ok_and(|ascii| is_valid_ascii_domain(&ascii))
}

fn is_valid_ascii_domain(domain: &str) -> bool {
    if EmailAddress::is_valid_domain(domain) {
        return true;
    }
    let ip = domain
        .strip_prefix('[')
        .and_then(|ip| ip.strip_suffix(']'))
        .unwrap_or(domain);
    ip.parse::<IpAddr>().is_ok()
}
