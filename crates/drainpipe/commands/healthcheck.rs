//! `drainpipe healthcheck`: the container health check, with no shell or curl in the image.
//! It reads the same options as `serve` (so `PORT`, `DRAINPIPE_LISTEN`, `--metrics-listen`
//! and `--tls-cert` lead it to the right address and scheme) and GETs `/healthz` there.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use anyhow::Context as _;

use crate::config::{HealthcheckArgs, ServeOptions};

/// `Ok` when `/healthz` answered 200; otherwise why not, in one line.
pub async fn run(args: &HealthcheckArgs) -> anyhow::Result<()> {
    let url = match &args.url {
        Some(url) => url.clone(),
        None => healthz_url(&args.serve)?,
    };
    // The check asks whether the process answers, not who it is: a self-signed certificate
    // on the drain listener must not fail it.
    let client = reqwest::Client::builder().timeout(args.timeout.0).danger_accept_invalid_certs(true).build()?;
    let response = client.get(url.clone()).send().await.with_context(|| url.to_string())?;
    let status = response.status();
    anyhow::ensure!(status == reqwest::StatusCode::OK, "{url} answered {status}");
    Ok(())
}

/// Where `serve` with these options answers `/healthz`: the metrics listener when there is
/// one (always plain HTTP), else the drain listener (HTTPS with `--tls-cert`). An address that
/// listens everywhere is asked on loopback.
fn healthz_url(serve: &ServeOptions) -> anyhow::Result<reqwest::Url> {
    let r = &serve.receive;
    let (addr, scheme) = match &r.metrics_listen {
        Some(metrics) => (metrics.0, "http"),
        None => (r.listen.0, if r.tls_files().is_some() { "https" } else { "http" }),
    };
    let url = format!("{scheme}://{}/healthz", loopback_if_unspecified(addr));
    Ok(reqwest::Url::parse(&url)?)
}

fn loopback_if_unspecified(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port()),
        IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port()),
        _ => addr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::serve_with;

    fn url(args: &[&str], env: &[(&str, &str)]) -> String {
        let serve = serve_with(args, |k| env.iter().find(|(name, _)| *name == k).map(|(_, v)| (*v).to_owned()));
        healthz_url(&serve.unwrap()).unwrap().to_string()
    }

    #[test]
    fn the_url_follows_the_serve_options() {
        assert_eq!(url(&[], &[]), "http://127.0.0.1:8080/healthz");
        assert_eq!(url(&[], &[("PORT", "5123")]), "http://127.0.0.1:5123/healthz");
        assert_eq!(url(&["--listen", "[::]:9000"], &[]), "http://[::1]:9000/healthz");
        assert_eq!(url(&["--listen", "10.1.2.3:9000"], &[]), "http://10.1.2.3:9000/healthz");
        let tls = ["--tls-cert", "c.pem", "--tls-key", "k.pem"];
        assert_eq!(url(&tls, &[]), "https://127.0.0.1:8080/healthz");
        let both = ["--tls-cert", "c.pem", "--tls-key", "k.pem", "--metrics-listen", ":9102"];
        assert_eq!(url(&both, &[]), "http://127.0.0.1:9102/healthz");
    }
}
