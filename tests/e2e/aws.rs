//! drainpipe signing for Amazon OpenSearch Service (`--aws-sigv4-region`), checked by a signer
//! that is not drainpipe's: tests/aws/sigv4-verifier recomputes every request's SigV4 signature
//! with botocore (AWS's Python SDK core) and forwards those that match to the real test cluster,
//! answering others with AWS's 403. Nothing here reaches AWS.

use std::process::{Child, Command};

use crate::support::*;

const KEY: &str = "AKIDDRAINPIPETEST";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const TOKEN: &str = "IQoJb3JpZ2luX2VjEXAMPLE+session/token==";

/// The verifier, in front of the test cluster, for `service`; killed when dropped.
struct Verifier {
    child: Child,
    url: String,
}

impl Verifier {
    fn start(service: &str) -> Verifier {
        let es = elasticsearch_url();
        let args = [es.as_str(), "us-east-1", service, KEY, SECRET, TOKEN];
        let (child, url) = start_port_printer("tests/aws/sigv4-verifier", &args);
        Verifier { child, url }
    }

    /// (requests whose signature botocore accepted, requests it refused).
    async fn counts(&self) -> (u64, u64) {
        let v: serde_json::Value =
            reqwest::get(format!("{}/__verifier", self.url)).await.unwrap().json().await.unwrap();
        (v["verified"].as_u64().unwrap(), v["refused"].as_u64().unwrap())
    }
}

impl Drop for Verifier {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The environment of a process given temporary credentials.
fn credentials(secret: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID", KEY.to_owned()),
        ("AWS_SECRET_ACCESS_KEY", secret.to_owned()),
        ("AWS_SESSION_TOKEN", TOKEN.to_owned()),
    ]
}

fn run_signed(args: &[&str], secret: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_drainpipe"))
        .args(args)
        .env("DRAINPIPE_LOG", "warn")
        .envs(credentials(secret))
        .output()
        .unwrap()
}

/// Serve (gzipped bulk bodies, signed as sent), setup and search all pass botocore's check,
/// and every document lands; a wrong secret is refused with AWS's words.
async fn signed_requests_land(service: &str) {
    let verifier = Verifier::start(service);
    let ns = unique_namespace(&format!("sigv4{service}"));
    let signing = ["--aws-sigv4-region", "us-east-1", "--aws-sigv4-service", service];
    let env = credentials(SECRET);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let dp = Drainpipe::start_with_env(&verifier.url, &ns, &signing, &env);
    dp.wait_for_log(
        &format!("AWS SigV4 ({service}, us-east-1), credentials from the environment"),
        std::time::Duration::from_secs(30),
    );
    let lines: Vec<String> = (0..5)
        .map(|i| format!("<190>1 2025-03-14T09:26:5{i}.000000+00:00 host app web.1 - signed {service} {i}* ok\n"))
        .collect();
    let headers = LogplexHeaders { frame_id: Some("SIGV4"), drain_token: Some("d.sigv4"), msg_count: 5 };
    assert_eq!(post_frame(&dp.url("/logs?app=shop"), logplex_body(&lines), &headers).await.status(), 200);
    wait_for_documents(&elasticsearch_url(), &streams_of(&ns), 5).await;
    drop(dp);

    let url = verifier.url.clone();
    let window = ["--since", "2025-03-14T09:00:00Z", "--until", "2025-03-14T10:00:00Z"];
    let search: Vec<&str> =
        [&["search", "--elasticsearch-url", url.as_str(), "--namespace", ns.as_str()][..], &signing, &window].concat();
    let found = run_signed(&search, SECRET);
    let said = String::from_utf8_lossy(&found.stdout);
    assert!(found.status.success(), "{}", String::from_utf8_lossy(&found.stderr));
    assert_eq!(said.matches(&format!("signed {service}")).count(), 5, "{said}");
    let (verified, refused) = verifier.counts().await;
    assert!(verified >= 5, "botocore checked {verified} requests");
    assert_eq!(refused, 0, "every signature drainpipe made passed");

    let setup: Vec<&str> = [&["setup", "--elasticsearch-url", url.as_str()][..], &signing].concat();
    let wrong = run_signed(&setup, "not-the-secret");
    let said = String::from_utf8_lossy(&wrong.stderr);
    assert!(!wrong.status.success(), "{said}");
    assert!(said.contains("403") && said.contains("signature we calculated does not match"), "{said}");
}

#[tokio::test]
async fn amazon_opensearch_service_domains_get_requests_botocore_verifies() {
    signed_requests_land("es").await;
}

#[tokio::test]
async fn opensearch_serverless_gets_the_body_hash_signed_too() {
    signed_requests_land("aoss").await;
}
