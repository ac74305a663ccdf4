//! Who a console page is shown to: a signed-in admin (made by [`crate::session`], shown by
//! [`crate::layout`]).

/// A signed-in admin: the extractor of every console page but the login page. Without a
/// (valid) session it redirects to the login page; a non-admin gets the 403 page.
#[derive(Debug, Clone)]
pub struct Admin {
    /// The account id.
    pub subject: String,
    /// The session's CSRF token.
    pub csrf: String,
    /// Its e-mail (shown in the top bar).
    pub email: String,
}
