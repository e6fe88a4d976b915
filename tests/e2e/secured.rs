//! drainpipe against a secured cluster: HAProxy (a real TLS terminator and gate, not a stand-in)
//! in front of the real Elasticsearch, requiring a client certificate from a private CA, or
//! enforcing logins (basic auth and an API key, a user who may only read); and Elasticsearch's
//! own security, turned on in its test distribution (file-realm users and roles: the API keys
//! it cannot make there, for want of a module, are HAProxy's). `scripts/test` installs HAProxy;
//! a test here fails, never skips, without it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

/// A private CA, a server certificate for `localhost` it signed, a client certificate it
/// signed, and a client certificate from another CA (a refused one), as PEM files in a folder.
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn new(dir: &Path) -> Pki {
        std::fs::create_dir_all(dir).unwrap();
        let (ca, ca_key) = certificate_authority();
        let (other_ca, other_key) = certificate_authority();
        let write = |name: &str, text: String| std::fs::write(dir.join(name), text).unwrap();
        write("ca.pem", ca.pem());
        let server = signed(&ca, &ca_key, vec!["localhost".to_owned()]);
        // HAProxy reads the certificate and its key from one file.
        write("server.pem", format!("{}{}", server.0.pem(), server.1.serialize_pem()));
        let client = signed(&ca, &ca_key, Vec::new());
        write("client.pem", client.0.pem());
        write("client-key.pem", client.1.serialize_pem());
        let rogue = signed(&other_ca, &other_key, Vec::new());
        write("rogue.pem", rogue.0.pem());
        write("rogue-key.pem", rogue.1.serialize_pem());
        Pki { dir: dir.to_owned() }
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).to_string_lossy().into_owned()
    }
}

fn certificate_authority() -> (rcgen::Certificate, rcgen::KeyPair) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    (params.self_signed(&key).unwrap(), key)
}

fn signed(
    ca: &rcgen::Certificate,
    ca_key: &rcgen::KeyPair,
    names: Vec<String>,
) -> (rcgen::Certificate, rcgen::KeyPair) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(names).unwrap();
    params.distinguished_name.push(rcgen::DnType::CommonName, "drainpipe");
    (params.signed_by(&key, ca, ca_key).unwrap(), key)
}

/// HAProxy listening on a port of its own with `bind_options` and the frontend's `rules`,
/// passing what it lets through to the test Elasticsearch; stopped when dropped. `before`
/// goes ahead of the sections (a `userlist`).
struct Haproxy {
    child: Child,
    port: u16,
}

impl Haproxy {
    fn start(dir: &Path, before: &str, bind_options: &str, rules: &str) -> Haproxy {
        let es = elasticsearch_url();
        let upstream = es.trim_start_matches("http://").trim_end_matches('/');
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let config = format!(
            "global\n    maxconn 256\n{before}\
             defaults\n    mode http\n    timeout connect 5s\n    timeout client 60s\n    timeout server 60s\n\
             frontend gate\n    bind 127.0.0.1:{port} {bind_options}\n{rules}    default_backend elasticsearch\n\
             backend elasticsearch\n    server es {upstream}\n"
        );
        std::fs::create_dir_all(dir).unwrap();
        let path = dir.join("haproxy.cfg");
        std::fs::write(&path, config).unwrap();
        let child = Command::new("haproxy")
            .args(["-db", "-f"])
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("HAProxy runs (scripts/test installs it: apt-get install haproxy)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "HAProxy did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Haproxy { child, port }
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn check_config_online(url: &str, extra: &[&str]) -> Output {
    run_drainpipe(&[&["check-config", "--online", "--elasticsearch-url", url], extra].concat())
}

/// What a command printed to standard error.
fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Mutual TLS: HAProxy asks for a client certificate from the private CA. drainpipe shows
/// `--elasticsearch-client-cert` and is let through (check-config, then documents stored);
/// a certificate from another CA, or none, is refused, and check-config says so.
#[tokio::test]
async fn mutual_tls_shows_the_client_certificate_and_a_refused_one_is_reported() {
    let dir = std::env::temp_dir().join(unique_namespace("mtls"));
    let pki = Pki::new(&dir);
    let bind = format!("ssl crt {} ca-file {} verify required", pki.path("server.pem"), pki.path("ca.pem"));
    let gate = Haproxy::start(&dir, "", &bind, "");
    let url = format!("https://localhost:{}", gate.port);
    let ca = pki.path("ca.pem");
    let with = |cert: &str, key: &str| {
        vec![
            "--elasticsearch-ca".to_owned(),
            ca.clone(),
            "--elasticsearch-client-cert".to_owned(),
            pki.path(cert),
            "--elasticsearch-client-key".to_owned(),
            pki.path(key),
        ]
    };
    let good = with("client.pem", "client-key.pem");
    let good: Vec<&str> = good.iter().map(String::as_str).collect();

    let out = check_config_online(&url, &good);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && said.contains("answers"), "{said}");
    let rogue = with("rogue.pem", "rogue-key.pem");
    let rogue: Vec<&str> = rogue.iter().map(String::as_str).collect();
    let refusals = [("another CA's certificate", rogue.as_slice()), ("no certificate", &["--elasticsearch-ca", &ca])];
    for (what, extra) in refusals {
        let out = check_config_online(&url, extra);
        let said = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(78), "{what}: {said}");
        // The node, and HAProxy's answer (a TLS alert), not only "error sending request".
        let node = format!("https://localhost:{}", gate.port);
        assert!(said.contains(&node) && said.contains("fatal alert"), "{what}: {said}");
    }

    let ns = unique_namespace("mtls");
    let dp = Drainpipe::start_against(&url, &ns, &good);
    let lines: Vec<String> = (0..3)
        .map(|i| format!("<190>1 2025-03-14T09:26:5{i}.000000+00:00 host app web.1 - through mTLS {i}\n"))
        .collect();
    let headers = LogplexHeaders { frame_id: Some("MTLS1"), drain_token: Some("d.mtls"), msg_count: 3 };
    assert_eq!(post_frame(&dp.url("/logs?app=shop"), logplex_body(&lines), &headers).await.status(), 200);
    wait_for_documents(&elasticsearch_url(), &streams_of(&ns), 3).await;
    drop(dp);
    drop(gate);
    let _ = std::fs::remove_dir_all(dir);
}

/// A command that failed on a 401 and said what it means.
fn assert_login_refused(out: &Output, what: &str) {
    let said = stderr(out);
    assert!(!out.status.success(), "{what} succeeded");
    assert!(said.contains("401 Unauthorized") && said.contains("credentials were refused"), "{what}: {said}");
}

/// HAProxy enforcing logins: `drainpipe:right` and the API key `id:key` may do anything;
/// `reader:right` may read but not write (`_bulk`, PUT, DELETE: 403); anything else is 401.
fn login_gate(dir: &Path) -> Haproxy {
    use base64::Engine as _;
    let key = base64::engine::general_purpose::STANDARD.encode("id:key");
    let users = "userlist people\n    group writers users drainpipe\n    group readers users reader\n    \
                 user drainpipe insecure-password right\n    user reader insecure-password right\n";
    let rules = format!(
        "    acl key req.hdr(Authorization) -m str \"ApiKey {key}\"\n\
         \x20   acl writer http_auth_group(people) writers\n\
         \x20   acl reader http_auth_group(people) readers\n\
         \x20   acl writes path_beg /_bulk\n\
         \x20   acl writes method PUT DELETE\n\
         \x20   http-request auth realm elasticsearch unless key or writer or reader\n\
         \x20   http-request deny deny_status 403 if reader writes\n"
    );
    Haproxy::start(dir, users, "", &rules)
}

/// The 401 and 403 paths of `setup`, `search`, `deadletter` and `serve`, against a gate that
/// enforces them: a wrong password is named as such, a user who may not write is told which
/// privileges are missing, and what `serve` accepted meanwhile waits in its spool and is stored
/// once the credentials are right.
#[tokio::test]
async fn refused_credentials_and_privileges_are_named_and_lose_nothing() {
    let dir = std::env::temp_dir().join(unique_namespace("logins"));
    let gate = login_gate(&dir);
    let url = |login: &str| format!("http://{login}@127.0.0.1:{}", gate.port);
    let ns = unique_namespace("logins");

    let wrong = url("drainpipe:wrong");
    let out = run_drainpipe(&["setup", "--elasticsearch-url", &wrong]);
    assert_login_refused(&out, "setup");
    let out = run_drainpipe(&["search", "--elasticsearch-url", &wrong, "--namespace", &ns, "--since", "1h"]);
    assert_login_refused(&out, "search");
    let out = run_drainpipe(&["deadletter", "list", "--elasticsearch-url", &wrong, "--namespace", &ns]);
    assert_login_refused(&out, "deadletter");

    // serve, refused: what it accepts waits in the spool.
    let spool = dir.join("spool");
    let spool_arg = spool.to_str().unwrap();
    let lines: Vec<String> =
        (0..3).map(|i| format!("<190>1 2025-03-14T09:26:5{i}.000000+00:00 host app web.1 - login {i}\n")).collect();
    let headers = LogplexHeaders { frame_id: Some("LOGINS1"), drain_token: Some("d.logins"), msg_count: 3 };
    let reader =
        Drainpipe::start_against(&url("reader:right"), &ns, &["--spool-dir", spool_arg, "--manage-templates", "false"]);
    assert_eq!(post_frame(&reader.url("/logs?app=shop"), logplex_body(&lines), &headers).await.status(), 200);
    let said = reader.wait_for_log("refuses to let drainpipe write (403)", Duration::from_secs(30));
    assert!(said.contains("logs-heroku.*"), "names where privileges are missing: {said}");
    drop(reader);
    let wrong_serve = Drainpipe::start_against(&wrong, &ns, &["--spool-dir", spool_arg]);
    let said = wrong_serve.wait_for_log("cannot install the index template yet", Duration::from_secs(30));
    assert!(said.contains("401"), "{said}");
    drop(wrong_serve);
    // Right, with the API key: the spooled frame is stored, once.
    let keyed = Drainpipe::start_against(
        &format!("http://127.0.0.1:{}", gate.port),
        &ns,
        &["--spool-dir", spool_arg, "--elasticsearch-api-key", "id:key"],
    );
    assert_eq!(wait_for_count(&elasticsearch_url(), &streams_of(&ns), 3, Duration::from_secs(30)).await, 3);
    drop(keyed);
    let since = ["--since", "2025-03-14T09:00:00Z", "--until", "2025-03-14T10:00:00Z"];
    let out = run_drainpipe(
        &[&["search", "--elasticsearch-url", &url("reader:right"), "--namespace", &ns], &since[..]].concat(),
    );
    let found = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && found.matches("login ").count() == 3,
        "a reader may search: {found} {}",
        stderr(&out)
    );
    drop(gate);
    let _ = std::fs::remove_dir_all(dir);
}

/// Elasticsearch with its own security on (scripts/elasticsearch `ES_SECURITY=on`: the file
/// realm's `admin`, `writer` with the role docs/operations.md gives drainpipe, and `reader`),
/// on a port of its own (the fault tests' base port + 5), stopped when dropped.
struct SecuredElasticsearch {
    port: u16,
}

impl SecuredElasticsearch {
    fn start() -> SecuredElasticsearch {
        let es = SecuredElasticsearch { port: fault_base_port() + 5 };
        assert!(es.script(&["start"]), "scripts/elasticsearch with ES_SECURITY=on did not start on port {}", es.port);
        es
    }

    fn url(&self, login: &str) -> String {
        format!("http://{login}@127.0.0.1:{}", self.port)
    }

    fn script(&self, args: &[&str]) -> bool {
        elasticsearch_script(self.port, args, &[("ES_SECURITY", "on")])
    }
}

impl Drop for SecuredElasticsearch {
    fn drop(&mut self) {
        self.script(&["stop"]);
    }
}

/// `check-config --online`'s privileges branch against Elasticsearch's own security (its
/// `_has_privileges`, not a proxy): the documented role passes and writes, a read-only role is
/// named with what it lacks, a wrong password is refused. OpenSearch has no `_has_privileges`
/// (its security plugin is another API), so on the OpenSearch targets this test has nothing to
/// check and returns.
#[tokio::test]
async fn elasticsearch_security_checks_the_documented_role_and_names_what_a_role_lacks() {
    if std::env::var("DRAINPIPE_DISTRIBUTION").is_ok_and(|d| d.starts_with("opensearch")) {
        return;
    }
    let es = SecuredElasticsearch::start();
    let writer = es.url("writer:writer-pass");
    let out = check_config_online(&writer, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("the user has every privilege drainpipe needs"), "{}", stderr(&out));

    let out = check_config_online(&es.url("reader:reader-pass"), &[]);
    assert_eq!(out.status.code(), Some(78), "{}", stderr(&out));
    let said = stderr(&out);
    assert!(
        said.contains(
            "the user lacks cluster manage_index_templates, create_doc on logs-heroku.*, auto_configure on logs-heroku.*, \
             create_doc on metrics-heroku.*, auto_configure on metrics-heroku.*, create_doc on traces-heroku.*, \
             auto_configure on traces-heroku.*"
        ),
        "{said}"
    );
    let out = check_config_online(&es.url("writer:wrong"), &[]);
    assert_eq!(out.status.code(), Some(78), "{}", stderr(&out));
    assert!(stderr(&out).contains("the credentials were refused"), "{}", stderr(&out));

    // The documented role is enough to serve: templates installed, streams made, documents in.
    let ns = unique_namespace("secrole");
    let dp = Drainpipe::start_against(&writer, &ns, &[]);
    let lines: Vec<String> = (0..3)
        .map(|i| format!("<190>1 2025-03-14T09:27:0{i}.000000+00:00 host app web.1 - with the role {i}\n"))
        .collect();
    let headers = LogplexHeaders { frame_id: Some("SECROLE"), drain_token: Some("d.role"), msg_count: 3 };
    assert_eq!(post_frame(&dp.url("/logs?app=shop"), logplex_body(&lines), &headers).await.status(), 200);
    wait_for_documents(&es.url("admin:admin-pass"), &streams_of(&ns), 3).await;
    drop(dp);
    // And the reader may search what was written.
    let window = ["--since", "2025-03-14T09:00:00Z", "--until", "2025-03-14T10:00:00Z"];
    let reader = es.url("reader:reader-pass");
    let out = run_drainpipe(
        &[&["search", "--elasticsearch-url", reader.as_str(), "--namespace", ns.as_str()][..], &window].concat(),
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).matches("with the role").count(), 3, "{}", stderr(&out));
}
