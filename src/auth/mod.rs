//! Authentication: passwords, sessions, sign-in, CSRF, throttling, live revocation and the identity assertion.
//! This layer owns the security rules; the web layer only turns HTTP into calls here and results into pages.

pub mod assertion;
pub mod cookies;
pub mod csrf;
pub mod form_throttle;
pub mod hash_pool;
pub mod identity;
pub mod login;
pub mod password;
pub mod revocation;
pub mod session_cache;
pub mod sessions;
pub mod throttle;

pub use assertion::AssertionSigner;
pub use cookies::CookieNames;
pub use csrf::CsrfGuard;
pub use identity::IdentityValues;
pub use login::{Login, LoginAttempt, LoginError, SignedIn};
pub use password::Passwords;
pub use revocation::RevocationHub;
pub use sessions::{Authenticated, ClientInfo, Sessions};
pub use throttle::LoginThrottle;
