//! Server-rendered pages. Templates are compiled into the binary (so the single file is the whole product)
//! and auto-escaped; each page handler passes a small context struct.

use std::sync::OnceLock;

use minijinja::Environment;
use serde::Serialize;

use crate::config::brand::BrandConfig;

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../../templates/base.html")),
    ("login.html", include_str!("../../templates/login.html")),
    ("logout.html", include_str!("../../templates/logout.html")),
    ("setup.html", include_str!("../../templates/setup.html")),
    ("error.html", include_str!("../../templates/error.html")),
    ("register.html", include_str!("../../templates/register.html")),
    ("verify.html", include_str!("../../templates/verify.html")),
    ("forgot_password.html", include_str!("../../templates/forgot_password.html")),
    ("forgot_username.html", include_str!("../../templates/forgot_username.html")),
    ("reset_password.html", include_str!("../../templates/reset_password.html")),
    ("sent.html", include_str!("../../templates/sent.html")),
    ("account.html", include_str!("../../templates/account.html")),
    ("admin_base.html", include_str!("../../templates/admin_base.html")),
    ("admin_chart.html", include_str!("../../templates/admin_chart.html")),
    ("admin_dashboard.html", include_str!("../../templates/admin_dashboard.html")),
    ("admin_users.html", include_str!("../../templates/admin_users.html")),
    ("admin_user.html", include_str!("../../templates/admin_user.html")),
    ("admin_delete.html", include_str!("../../templates/admin_delete.html")),
    ("admin_invites.html", include_str!("../../templates/admin_invites.html")),
    ("admin_audit.html", include_str!("../../templates/admin_audit.html")),
    ("oidc_consent.html", include_str!("../../templates/oidc_consent.html")),
    ("oidc_logout.html", include_str!("../../templates/oidc_logout.html")),
];

fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            env.add_template(name, source).expect("bundled templates are valid (checked by tests)");
        }
        env
    })
}

/// Renders a bundled template with what every page shows of the app (`app_name`, `has_logo`, `has_theme`
/// from `brand`); a failure is a bug, logged, and shown as a minimal page.
pub fn render<C: Serialize>(name: &str, brand: &BrandConfig, context: C) -> String {
    let context = minijinja::context! {
        app_name => brand.app_name.as_deref(),
        has_logo => brand.logo.is_some(),
        has_theme => brand.primary_color.is_some(),
        ..minijinja::Value::from_serialize(&context)
    };
    match environment().get_template(name).and_then(|t| t.render(context)) {
        Ok(html) => html,
        Err(err) => {
            tracing::error!(error = %err, template = name, "template failed to render");
            "<!doctype html><title>Error</title><p>Something went wrong while drawing this page.</p>".to_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_compiles() {
        for (name, _) in TEMPLATES {
            assert!(environment().get_template(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn output_is_escaped() {
        let html = render(
            "error.html",
            &BrandConfig::default(),
            minijinja::context! { title => "t", message => "<script>alert(1)</script>", status => 400, request_id => "r" },
        );
        assert!(!html.contains("<script>alert(1)"));
        assert!(html.contains("&lt;script&gt;"));
    }
}
