use std::ffi::OsString;

use super::*;

#[derive(clap::Parser, Debug)]
struct Cli {
    #[command(subcommand)]
    command: Sub,
}

#[derive(clap::Subcommand, Debug)]
enum Sub {
    Serve(ServeOptions),
}

/// `serve`'s options from `args` and the platform variables `env` gives (other modules'
/// tests use it too).
pub(crate) fn serve_with(args: &[&str], env: impl Fn(&str) -> Option<String>) -> Result<ServeOptions, clap::Error> {
    let args: Vec<OsString> = ["drainpipe", "serve"].iter().chain(args).map(OsString::from).collect();
    parse::<Cli>(&args, env).map(|c| {
        let Sub::Serve(o) = c.command;
        o
    })
}

fn serve(args: &[&str]) -> ServeOptions {
    serve_with(args, |_| None).unwrap()
}

#[test]
fn defaults() {
    let c = serve(&[]);
    assert_eq!(c.receive.listen.0.to_string(), "0.0.0.0:8080");
    assert_eq!(format!("{:?}", c.elasticsearch.elasticsearch_url), "[http://127.0.0.1:9200/]");
    assert_eq!(c.elasticsearch.dead_letter_stream(), "logs-heroku.deadletter-default");
    assert!(c.spool_config().is_none());
    assert_eq!((c.bulk.bulk_max_docs.get(), c.bulk.bulk_concurrency.get()), (2000, 2));
    assert_eq!(c.delivery.shutdown_timeout.0, std::time::Duration::from_secs(30));
    assert_eq!(c.receive.queue_max_bytes.0, 64 << 20);
    assert!(c.elasticsearch.retention.is_empty(), "unset keeps what is installed");
    assert!(c.problems().is_empty(), "{:?}", c.problems());
}

#[test]
fn every_flag_reads_its_environment_variable() {
    let cli = command::<Cli>();
    let serve = cli.find_subcommand("serve").unwrap();
    let mut n = 0;
    for arg in serve.get_arguments().filter(|a| a.get_long().is_some()) {
        let long = arg.get_long().unwrap();
        assert_eq!(arg.get_env().and_then(|e| e.to_str()), Some(env_name(long).as_str()), "--{long}");
        n += 1;
    }
    assert!(n > 25, "{n} flags");
    assert_eq!(env_name("drain-token"), "DRAINPIPE_DRAIN_TOKEN");
}

#[test]
fn port_elasticsearch_url_and_the_old_drain_token_variable_are_honoured() {
    let env = |k: &str| match k {
        "PORT" => Some("5000".to_owned()),
        "ELASTICSEARCH_URL" => Some("http://es:9200".to_owned()),
        "DRAINPIPE_DRAIN_TOKENS" => Some("d.1=shop,d.2=blog".to_owned()),
        _ => None,
    };
    let c = serve_with(&[], env).unwrap();
    assert_eq!(c.receive.listen.0.to_string(), "0.0.0.0:5000");
    assert_eq!(format!("{:?}", c.elasticsearch.elasticsearch_url), "[http://es:9200/]");
    assert_eq!(c.receive.drain_tokens().app("d.2"), Some("blog"));
    // Bonsai, then SearchBox, then ELASTICSEARCH_URL.
    let addons = |k: &str| match k {
        "SEARCHBOX_URL" => Some("https://searchbox".to_owned()),
        "ELASTICSEARCH_URL" => Some("http://es:9200".to_owned()),
        _ => None,
    };
    let c = serve_with(&[], addons).unwrap();
    assert_eq!(format!("{:?}", c.elasticsearch.elasticsearch_url), "[https://searchbox/]");
    // A flag wins over them.
    let c = serve_with(&["--listen", "127.0.0.1:9"], env).unwrap();
    assert_eq!(c.receive.listen.0.to_string(), "127.0.0.1:9");
    let err = serve_with(&[], |k| (k == "PORT").then(|| "http".to_owned())).unwrap_err().to_string();
    assert!(err.contains("PORT"), "{err}");
}

#[test]
fn file_fills_what_flags_and_env_leave_open() {
    let dir = std::env::temp_dir().join(format!("drainpipe-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("drainpipe.toml");
    let file = "listen = \"127.0.0.1:7000\"\nelasticsearch-url = \"http://file:9200\"\nnamespace = \"prod\"\n\
                elasticsearch-gzip = true\nelasticsearch-gzip-level = 6\nbulk-max-docs = 10\nbasic-auth = [\"a:b\", \"c:d\"]\n";
    std::fs::write(&path, file).unwrap();
    let p = path.to_str().unwrap();
    let c = serve(&["--config", p, "--namespace", "flag"]);
    assert_eq!(c.receive.listen.0.to_string(), "127.0.0.1:7000");
    assert_eq!(format!("{:?}", c.elasticsearch.elasticsearch_url), "[http://file:9200/]");
    assert_eq!(c.elasticsearch.namespace.0, "flag");
    // The earlier `elasticsearch-gzip` is still taken beside the level.
    assert!(c.elasticsearch.elasticsearch_gzip);
    assert_eq!(c.elasticsearch.elasticsearch_gzip_level, 6);
    assert_eq!((c.bulk.bulk_max_docs.get(), c.receive.credentials().len()), (10, 2));
    // PORT is above the file.
    let c = serve_with(&["--config", p], |k| (k == "PORT").then(|| "5000".to_owned())).unwrap();
    assert_eq!(c.receive.listen.0.port(), 5000);

    std::fs::write(&path, "listen = \"127.0.0.1:7000\"\nlisten-address = \"x\"\n").unwrap();
    let err = serve_with(&["--config", p], |_| None).unwrap_err().to_string();
    assert!(err.contains("listen-address") && err.contains("unknown"), "{err}");
    std::fs::write(&path, "max-body-size = \"8 parsecs\"\n").unwrap();
    let err = serve_with(&["--config", p], |_| None).unwrap_err().to_string();
    assert!(err.contains("max-body-size") && err.contains("drainpipe.toml"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn values_people_write_are_taken_or_explained() {
    let c = serve(&["--listen", ":9000", "--metrics-listen", "localhost:9464", "--drain-token", "d.1=shop"]);
    assert_eq!(c.receive.listen.0.to_string(), "0.0.0.0:9000");
    assert_eq!(c.receive.metrics_listen.unwrap().0.port(), 9464);
    assert_eq!(c.receive.drain_tokens().app("d.1"), Some("shop"));
    let err = serve_with(&["--elasticsearch-url", "127.0.0.1:9200"], |_| None).unwrap_err();
    assert!(err.to_string().contains("http://127.0.0.1:9200"), "{err}");
    // A bad drain token and a bad credential are the same kind of error (exit code 2).
    let token = serve_with(&["--drain-token", "d.1"], |_| None).unwrap_err();
    let auth = serve_with(&["--basic-auth", "nopassword"], |_| None).unwrap_err();
    assert_eq!((token.exit_code(), auth.exit_code()), (2, 2));
}

#[test]
fn options_that_clash_are_problems() {
    let problems = |args: &[&str]| serve(args).problems().join("\n");
    assert!(problems(&["--queue-max-bytes", "16MiB"]).contains("queue-max-bytes"));
    assert!(problems(&["--syslog-tls-listen", "127.0.0.1:6514"]).contains("syslog-tls-listen"));
    assert!(problems(&["--tls-cert", "c.pem"]).contains("go together"));
    assert!(problems(&["--metrics-listen", "127.0.0.1:8080"]).contains("same address"));
    assert!(problems(&["--listen", "127.0.0.1:8080", "--metrics-listen", "127.0.0.2:8080"]).is_empty());
    let small = problems(&["--spool-dir", "/nonexistent/spool", "--spool-max-bytes", "10MiB"]);
    assert!(small.contains("spool-max-bytes") && small.contains("two segments"), "{small}");
    assert!(problems(&["--spool-dir", "/nonexistent/spool"]).is_empty());
    assert!(problems(&["--archive-dir", "/a"]).contains("--archive-dir needs --spool-dir"));
    assert!(problems(&["--archive-dir", "/s/archive", "--spool-dir", "/s"]).contains("separate folders"));
    let archived = serve(&["--archive-dir", "/a", "--spool-dir", "/s", "--archive-retention", "90d"]);
    assert!(archived.problems().is_empty());
    let archive = archived.archive_config().unwrap();
    assert_eq!(archive.retention, Some(std::time::Duration::from_secs(90 * 86_400)));
    assert_eq!(serve(&["--archive-dir", "/a"]).archive_config().unwrap().retention, None, "forever by default");
}

#[test]
fn the_printed_configuration_hides_secrets_and_reads_back() {
    let c = serve(&[
        "--elasticsearch-url",
        "https://elastic:hunter2@es.example.com",
        "--elasticsearch-api-key",
        "id:topsecret",
        "--basic-auth",
        "logplex:s3cret",
        "--drain-token",
        "d.0b7a=shop",
        "--spool-dir",
        "/var/lib/drainpipe",
        "--spool-fsync",
        "200ms",
    ]);
    let printed = c.to_redacted_toml();
    for secret in ["hunter2", "topsecret", "s3cret", "d.0b7a"] {
        assert!(!printed.contains(secret), "{secret} printed:\n{printed}");
        assert!(!format!("{c:?}").contains(secret), "{secret} in Debug");
    }
    assert!(printed.contains("logplex:[REDACTED]") && printed.contains("[REDACTED]=shop"), "{printed}");
    assert!(printed.contains("spool-fsync = \"200ms\""), "{printed}");
    // Every key it prints is a key the file accepts, with a value it takes.
    let table: toml::Table = toml::from_str(&printed).unwrap();
    assert!(table.len() > 20, "{printed}");
    for key in table.keys() {
        assert!(check_value(key, &vec!["x".into()]) != Err("unknown option".to_owned()), "{key}");
    }
}

#[test]
fn a_cloud_id_names_the_node_and_clashes_with_a_url() {
    // Decodes to `us-east-1.aws.found.io$abc$def`.
    let id = "shop-logs:dXMtZWFzdC0xLmF3cy5mb3VuZC5pbyRhYmMkZGVm";
    let c = serve(&["--elasticsearch-cloud-id", id, "--elasticsearch-api-key", "id:key"]);
    assert_eq!(c.elasticsearch.client().unwrap().url(), "https://abc.us-east-1.aws.found.io/");
    assert!(c.to_redacted_toml().contains(&format!("elasticsearch-cloud-id = \"{id}\"")));
    // An add-on's URL is a fallback and gives way; a URL given as a flag clashes.
    let addon = |k: &str| (k == "BONSAI_URL").then(|| "https://bonsai".to_owned());
    let c = serve_with(&["--elasticsearch-cloud-id", id], addon).unwrap();
    assert_eq!(c.elasticsearch.client().unwrap().url(), "https://abc.us-east-1.aws.found.io/");
    let both = serve_with(&["--elasticsearch-cloud-id", id, "--elasticsearch-url", "https://es"], |_| None);
    assert!(both.unwrap_err().to_string().contains("cannot be used with"));
    let bad = serve_with(&["--elasticsearch-cloud-id", "dXMtZWFzdC0x"], |_| None).unwrap_err().to_string();
    assert!(bad.contains("--elasticsearch-cloud-id") && bad.contains("no ':' after the deployment name"), "{bad}");
}

#[test]
fn credentials_over_plain_http_to_another_machine_need_the_flag() {
    let insecure = serve(&["--elasticsearch-url", "http://drainpipe:secret@10.1.2.3:9200"]);
    let err = format!("{:#}", insecure.elasticsearch.client().unwrap_err());
    assert!(err.contains("--allow-insecure-credentials") && !err.contains("secret"), "{err}");
    let allowed =
        serve(&["--elasticsearch-url", "http://drainpipe:secret@10.1.2.3:9200", "--allow-insecure-credentials"]);
    assert_eq!(allowed.elasticsearch.client().unwrap().credentials(), r#"basic auth as "drainpipe""#);
}

#[test]
fn sigv4_signs_alone_and_not_over_plain_http_to_another_machine() {
    let signing = ["--aws-sigv4-region", "eu-west-1"];
    let with_login =
        serve(&[&["--elasticsearch-url", "https://u:p@search-logs.eu-west-1.es.amazonaws.com"][..], &signing].concat());
    let err = format!("{:#}", with_login.elasticsearch.client().unwrap_err());
    assert!(err.contains("AWS SigV4 signs every request itself"), "{err}");
    let plain = serve(&[&["--elasticsearch-url", "http://10.1.2.3:9200"][..], &signing].concat());
    let err = format!("{:#}", plain.elasticsearch.client().unwrap_err());
    assert!(err.contains("--allow-insecure-credentials"), "{err}");
    let serverless = serve(
        &[
            &["--elasticsearch-url", "https://abc.eu-west-1.aoss.amazonaws.com"][..],
            &signing,
            &["--aws-sigv4-service", "aoss"],
        ]
        .concat(),
    );
    let client = serverless.elasticsearch.client().unwrap();
    assert!(
        client.credentials().starts_with("AWS SigV4 (aoss, eu-west-1), credentials from"),
        "{}",
        client.credentials()
    );
    assert!(serve_with(&[&signing[..], &["--aws-sigv4-service", "s3"]].concat(), |_| None).is_err());
}

#[test]
fn a_client_certificate_needs_its_key() {
    let alone = serve(&["--elasticsearch-url", "https://es", "--elasticsearch-client-cert", "/nonexistent/c.pem"]);
    let err = format!("{:#}", alone.elasticsearch.client().unwrap_err());
    assert!(err.contains("--elasticsearch-client-cert and --elasticsearch-client-key go together"), "{err}");
    let dir = std::env::temp_dir().join(format!("drainpipe-client-cert-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("c.pem"), dir.join("k.pem"));
    std::fs::write(&cert, "not a certificate").unwrap();
    std::fs::write(&key, "not a key").unwrap();
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let broken = serve(&[
        "--elasticsearch-url",
        "https://es",
        "--elasticsearch-client-cert",
        cert,
        "--elasticsearch-client-key",
        key,
    ]);
    let err = format!("{:#}", broken.elasticsearch.client().unwrap_err());
    assert!(err.contains("client certificate and key"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}
