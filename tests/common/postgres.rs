//! PostgreSQL for tests: the server named by `GATEHOUSE_TEST_POSTGRES_URL`, with a schema of its own for each
//! test (so tests run in parallel and leave nothing behind: the schema is dropped when the test ends, also
//! when it panics). Without the variable the PostgreSQL tests are skipped with a message, unless
//! `GATEHOUSE_REQUIRE_POSTGRES=1` (set by `.ci/run`), which turns the skip into a failure.

use sqlx::Connection;

/// The test server's URL, or `None` (with a loud message) when PostgreSQL tests are to be skipped.
pub fn server_url(test: &str) -> Option<String> {
    match std::env::var("GATEHOUSE_TEST_POSTGRES_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("GATEHOUSE_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "GATEHOUSE_REQUIRE_POSTGRES=1 but GATEHOUSE_TEST_POSTGRES_URL is not set: {test} cannot run"
            );
            eprintln!("SKIPPED {test}: set GATEHOUSE_TEST_POSTGRES_URL to run the PostgreSQL tests");
            None
        }
    }
}

/// A schema of this test's own; `url()` connects with it as the search path.
pub struct TestSchema {
    server: String,
    name: String,
}

impl TestSchema {
    /// A schema for `test` on the test server, or `None` when PostgreSQL tests are skipped (see
    /// [`server_url`]).
    pub async fn for_test(test: &str) -> Option<Self> {
        let server = server_url(test)?;
        Some(Self::create(&server).await)
    }

    /// Another schema on the same server, for a test that needs two databases.
    pub async fn sibling(&self) -> Self {
        Self::create(&self.server).await
    }

    /// The server's URL (the database, without this schema).
    pub fn server(&self) -> &str {
        &self.server
    }

    async fn create(server: &str) -> Self {
        let name = format!("gh_test_{}", gatehouse::random::url_token(9).to_lowercase().replace(['-', '_'], "x"));
        let mut conn = sqlx::PgConnection::connect(server).await.expect("the test PostgreSQL server answers");
        sqlx::query(&format!("CREATE SCHEMA {name}")).execute(&mut conn).await.unwrap();
        Self { server: server.to_owned(), name }
    }

    /// A database URL whose connections use only this schema.
    pub fn url(&self) -> String {
        let separator = if self.server.contains('?') { '&' } else { '?' };
        format!("{}{separator}options[search_path]={}", self.server, self.name)
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        let (server, name) = (self.server.clone(), self.name.clone());
        // Drop may run inside a runtime (or while unwinding from a panic), so the clean-up gets its own.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&server).await {
                    let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {name} CASCADE")).execute(&mut conn).await;
                }
            });
        });
        let _ = cleanup.join();
    }
}
