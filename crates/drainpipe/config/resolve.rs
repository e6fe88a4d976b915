//! Options resolved into what the libraries take: a client, an indexer, a spool, credentials,
//! and the problems of options that clash.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use drainpipe_bulk_indexer::{Client, ClientConfig, DeadLetterConfig, IndexerConfig};
use drainpipe_ingest::{BearerTokens, Credential, DrainTokens};
use drainpipe_spool::SpoolConfig;

use super::options::{BulkOptions, ElasticsearchOptions, ReceiveOptions, ServeOptions};
use super::values::ListenAddr;

impl ElasticsearchOptions {
    /// The client these options describe.
    pub fn client(&self) -> anyhow::Result<Client> {
        self.client_of(self.urls())
    }

    /// A client of each node on its own (check-config asks each one).
    pub fn node_clients(&self) -> Vec<anyhow::Result<Client>> {
        self.urls().into_iter().map(|url| self.client_of(vec![url])).collect()
    }

    /// The nodes: the Cloud ID's endpoint, else every `--elasticsearch-url`.
    fn urls(&self) -> Vec<String> {
        match &self.elasticsearch_cloud_id {
            Some(cloud) => vec![cloud.elasticsearch_url.clone()],
            None => self.elasticsearch_url.iter().map(|u| u.0.clone()).collect(),
        }
    }

    fn client_of(&self, urls: Vec<String>) -> anyhow::Result<Client> {
        let ca_pem = self.ca_pem()?;
        Ok(Client::with_config(&ClientConfig {
            urls,
            api_key: self.elasticsearch_api_key.as_ref().map(|k| k.expose().to_owned()),
            ca_pem,
            client_identity_pem: self.client_identity_pem()?,
            gzip_level: self.gzip_level(),
            allow_insecure_credentials: self.allow_insecure_credentials,
            aws_sigv4: self.aws_signer()?,
        })?
        .writing_to(drainpipe_delivery::DataStreams::EVERY_SIGNAL_TARGET))
    }

    /// The SigV4 signer `--aws-sigv4-region` asks for.
    fn aws_signer(&self) -> anyhow::Result<Option<std::sync::Arc<drainpipe_aws_auth::Signer>>> {
        let Some(region) = &self.aws_sigv4_region else { return Ok(None) };
        let service = self.aws_sigv4_service.parse().map_err(anyhow::Error::msg)?;
        let chain = drainpipe_aws_auth::CredentialsChain::from_env(region);
        Ok(Some(std::sync::Arc::new(drainpipe_aws_auth::Signer::new(region, service, chain))))
    }

    /// The gzip level of bulk bodies, `None` for none.
    fn gzip_level(&self) -> Option<u32> {
        (self.elasticsearch_gzip_level > 0).then_some(self.elasticsearch_gzip_level)
    }

    /// The client certificate's chain and then its key, read from their files (mutual TLS).
    fn client_identity_pem(&self) -> anyhow::Result<Option<Vec<u8>>> {
        let (cert, key) = match (&self.elasticsearch_client_cert, &self.elasticsearch_client_key) {
            (None, None) => return Ok(None),
            (Some(cert), Some(key)) => (cert, key),
            _ => anyhow::bail!("--elasticsearch-client-cert and --elasticsearch-client-key go together"),
        };
        let read = |path: &PathBuf| std::fs::read(path).with_context(|| format!("cannot read {}", path.display()));
        let mut pem = read(cert)?;
        pem.push(b'\n');
        pem.extend(read(key)?);
        Ok(Some(pem))
    }

    /// The `--elasticsearch-ca` file's certificates (Kibana is trusted with them too).
    pub fn ca_pem(&self) -> anyhow::Result<Option<Vec<u8>>> {
        let read = |path: &PathBuf| std::fs::read(path).with_context(|| format!("cannot read {}", path.display()));
        self.elasticsearch_ca.as_ref().map(read).transpose()
    }

    /// Where documents Elasticsearch will never take are kept.
    pub fn dead_letter_stream(&self) -> String {
        drainpipe_delivery::DataStreams::new(&self.namespace.0).dead_letters().to_owned()
    }
}

impl BulkOptions {
    /// Batching and concurrency; dead letters go to the dead-letter stream of `elasticsearch`,
    /// then to `dead_letter_file` when there is one.
    pub fn indexer_config(
        &self,
        elasticsearch: &ElasticsearchOptions,
        dead_letter_file: Option<PathBuf>,
    ) -> IndexerConfig {
        IndexerConfig {
            max_docs: self.bulk_max_docs.get(),
            max_bytes: self.bulk_max_bytes.0,
            flush_interval: self.bulk_flush_interval.0,
            concurrency: self.bulk_concurrency.get(),
            dead_letter: DeadLetterConfig { index: elasticsearch.dead_letter_stream(), file: dead_letter_file },
            ..IndexerConfig::default()
        }
    }
}

impl ReceiveOptions {
    /// The certificate and key files, when both are given.
    pub fn tls_files(&self) -> Option<(&Path, &Path)> {
        self.tls_cert.as_deref().zip(self.tls_key.as_deref())
    }

    /// Every `--basic-auth` credential, however they were given.
    pub fn credentials(&self) -> Vec<Credential> {
        self.basic_auth.iter().flat_map(|l| l.0.iter().cloned()).collect()
    }

    /// The OTLP endpoints' bearer tokens.
    pub fn otlp_tokens(&self) -> BearerTokens {
        BearerTokens::new(self.otlp_token.iter().map(|t| (t.token.clone(), t.app.clone())))
    }

    pub fn drain_tokens(&self) -> DrainTokens {
        DrainTokens::new(self.drain_token.iter().map(|t| (t.token.clone(), t.app.clone())))
    }

    /// The largest record a frame can make: a largest request, or a syslog read of messages.
    pub fn largest_frame(&self) -> usize {
        self.max_body_size.0.max(2 * self.max_message_size.0 + (64 << 10))
    }

    /// Every address listened on, with its flag.
    fn addresses(&self) -> Vec<(&'static str, ListenAddr)> {
        let optional = [
            ("metrics-listen", self.metrics_listen),
            ("syslog-listen", self.syslog_listen),
            ("syslog-tls-listen", self.syslog_tls_listen),
            ("otlp-grpc-listen", self.otlp_grpc_listen),
        ];
        std::iter::once(("listen", self.listen))
            .chain(optional.into_iter().filter_map(|(f, a)| Some((f, a?))))
            .collect()
    }
}

impl ServeOptions {
    /// What is wrong with these options together (each value alone was checked when parsed).
    pub fn problems(&self) -> Vec<String> {
        let r = &self.receive;
        let mut problems = Vec::new();
        if r.tls_cert.is_some() != r.tls_key.is_some() {
            problems.push("--tls-cert and --tls-key go together".to_owned());
        }
        if r.syslog_tls_listen.is_some() && r.tls_files().is_none() {
            problems.push("--syslog-tls-listen needs --tls-cert and --tls-key".to_owned());
        }
        // A largest gzip body needs its compressed bytes, its inflated bytes and its message
        // index at once; below that, such a request could never be taken.
        if r.queue_max_bytes.0 < 3 * r.max_body_size.0 {
            problems.push(format!(
                "--queue-max-bytes ({}) must be at least three times --max-body-size ({})",
                r.queue_max_bytes.0, r.max_body_size.0
            ));
        }
        let addresses = r.addresses();
        for (i, (flag, a)) in addresses.iter().enumerate() {
            for (other, b) in &addresses[i + 1..] {
                let overlap = a.0.ip() == b.0.ip() || a.0.ip().is_unspecified() || b.0.ip().is_unspecified();
                if a.0.port() == b.0.port() && a.0.port() != 0 && overlap {
                    problems.push(format!("--{flag} ({}) and --{other} ({}) are the same address", a.0, b.0));
                }
            }
        }
        if let Some(Err(e)) = self.spool_config() {
            problems.push(format!("--spool-max-bytes: {e}"));
        }
        match (&self.delivery.archive_dir, &self.delivery.spool_dir) {
            (Some(_), None) => problems.push(
                "--archive-dir needs --spool-dir: the archive is written from the spool, so that neither Elasticsearch nor the archive's disk being down loses a line".to_owned(),
            ),
            (Some(archive), Some(spool)) if archive.starts_with(spool) || spool.starts_with(archive) => {
                problems.push("--archive-dir and --spool-dir must be separate folders, neither inside the other".to_owned());
            }
            _ => {}
        }
        if let Err(rules) = crate::commands::rules::read(self.general.config.as_deref()) {
            problems.extend(rules);
        }
        problems
    }

    /// The spool these options ask for, with segments that hold the largest frame.
    pub fn spool_config(&self) -> Option<Result<SpoolConfig, drainpipe_spool::SpoolError>> {
        let d = &self.delivery;
        let dir = d.spool_dir.clone()?;
        let largest = drainpipe_delivery::record::max_record_len(self.receive.largest_frame()) as u64;
        Some(SpoolConfig::sized_for(dir, d.spool_max_bytes.0 as u64, largest, d.spool_fsync.into()))
    }

    /// The raw archive these options ask for.
    pub fn archive_config(&self) -> Option<drainpipe_archive::ArchiveConfig> {
        let d = &self.delivery;
        Some(drainpipe_archive::ArchiveConfig {
            dir: d.archive_dir.clone()?,
            retention: d.archive_retention.duration(),
            level: drainpipe_archive::DEFAULT_LEVEL,
        })
    }

    /// Bulk requests, with dead letters in the spool folder when the stream refuses them.
    pub fn indexer_config(&self) -> IndexerConfig {
        let file = self.delivery.spool_dir.as_ref().map(|d| d.join("dead-letters.ndjson"));
        self.bulk.indexer_config(&self.elasticsearch, file)
    }

    /// The effective options as TOML, keyed like the file, with every secret redacted.
    pub fn to_redacted_toml(&self) -> String {
        toml::to_string(self).unwrap_or_else(|e| format!("# cannot print the configuration: {e}\n"))
    }
}
