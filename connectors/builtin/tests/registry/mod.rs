//! The real CNCF distribution registry of `stella_test_support::registry`, and the image push the
//! oci-registry connector's tests need.

use rustls::pki_types::pem::PemObject as _;
pub use stella_test_support::registry::Registry;

/// Pushes an image with an empty config and no layers as `repository:tag`, through the registry's
/// own API (blob upload, then the manifest).
pub trait PushImage {
    async fn push(&self, user: &str, password: &str, repository: &str, tag: &str);
}

impl PushImage for Registry {
    async fn push(&self, user: &str, password: &str, repository: &str, tag: &str) {
        // sha256 of the two bytes `{}`.
        const CONFIG_DIGEST: &str = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
        let mut roots = rustls::RootCertStore::empty();
        let ca = rustls::pki_types::CertificateDer::from_pem_slice(self.ca_pem.as_bytes()).unwrap();
        roots.add(ca).unwrap();
        let tls = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
        let client = reqwest::Client::builder().use_preconfigured_tls(tls).build().unwrap();
        let upload = client
            .post(format!("{}/v2/{repository}/blobs/uploads/", self.url))
            .basic_auth(user, Some(password))
            .send()
            .await
            .unwrap();
        assert_eq!(upload.status(), 202, "starting the upload: {:?}", upload.text().await);
        let location = upload.headers()["location"].to_str().unwrap().to_string();
        let location = if location.starts_with('/') { format!("{}{location}", self.url) } else { location };
        let sep = if location.contains('?') { '&' } else { '?' };
        let blob = client
            .put(format!("{location}{sep}digest={CONFIG_DIGEST}"))
            .basic_auth(user, Some(password))
            .header("content-type", "application/octet-stream")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(blob.status(), 201, "uploading the config: {:?}", blob.text().await);
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": CONFIG_DIGEST, "size": 2},
            "layers": [],
        });
        let put = client
            .put(format!("{}/v2/{repository}/manifests/{tag}", self.url))
            .basic_auth(user, Some(password))
            .header("content-type", "application/vnd.oci.image.manifest.v1+json")
            .body(manifest.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(put.status(), 201, "putting the manifest: {:?}", put.text().await);
    }
}
