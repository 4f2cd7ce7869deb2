//! The webhook's TLS material, generated with OpenSSL (the TLS stack the webhook serves with):
//! a private CA and a serving certificate it signs, whose subject alternative names are every
//! DNS name of the webhook's Service. The API server trusts the CA through the
//! ValidatingWebhookConfiguration's `caBundle`; Prometheus through the Secret's `ca.crt`.
//!
//! Both certificates are valid for [`VALIDITY_DAYS`] (from an hour ago, for clock skew). The
//! CA's private key is not kept: renewing means generating a new pair and updating the Secret
//! and the `caBundle` together (re-running the installer, or the bootstrap operator at run
//! time). Keys are ECDSA P-256.

use anyhow::Context;
use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName, SubjectKeyIdentifier,
};
use openssl::x509::{X509, X509Name, X509NameBuilder};

/// Days the CA and serving certificate are valid.
pub const VALIDITY_DAYS: i64 = 365;

/// PEM-encoded CA certificate, serving certificate and serving key.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookTls {
    /// The CA certificate (`ca.crt`, and the VWC's `caBundle`).
    pub ca_crt: String,
    /// The serving certificate (`tls.crt`).
    pub tls_crt: String,
    /// The serving certificate's private key (`tls.key`, PKCS#8).
    pub tls_key: String,
    /// When the certificates expire, RFC 3339 UTC (an annotation on the Secret, so installers
    /// know when to renew without parsing the certificate).
    pub not_after: String,
}

impl std::fmt::Debug for WebhookTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookTls").field("not_after", &self.not_after).finish_non_exhaustive()
    }
}

impl WebhookTls {
    /// Empty key material, for renderings that leave out (or only name) the objects that carry it.
    pub fn placeholder() -> WebhookTls {
        WebhookTls { ca_crt: String::new(), tls_crt: String::new(), tls_key: String::new(), not_after: String::new() }
    }

    /// This certificate with the newest CA of `previous_ca` (PEM: the CA bundle of the
    /// certificate it replaces) added to its CA bundle while that CA is still valid at `now`:
    /// the API server then trusts both until the kubelet has put the new certificate into the
    /// webhook pods (up to a minute or two), so a renewal never interrupts admission. Only the
    /// newest previous CA is kept (the bundle holds at most two).
    pub fn with_previous_ca(mut self, previous_ca: Option<&[u8]>, now: jiff::Timestamp) -> WebhookTls {
        let previous = previous_ca.and_then(|pem| X509::from_pem(pem).ok()).filter(|ca| {
            openssl::asn1::Asn1Time::from_unix(now.as_second() as _).is_ok_and(|now| ca.not_after() > now)
        });
        if let Some(pem) = previous.and_then(|ca| ca.to_pem().ok()).and_then(|p| String::from_utf8(p).ok()) {
            self.ca_crt.push_str(&pem);
        }
        self
    }

    /// A new CA and a serving certificate for `dns_names` (the first is the subject's CN).
    pub fn generate(dns_names: &[String]) -> anyhow::Result<WebhookTls> {
        let now = jiff::Timestamp::now().as_second();
        let not_before = now - 3600;
        let not_after = now + VALIDITY_DAYS * 86_400;
        let ca_key = ec_key()?;
        let ca = ca_certificate(&ca_key, not_before, not_after).context("cannot build the webhook CA")?;
        let key = ec_key()?;
        let cert = serving_certificate(&key, &ca, &ca_key, dns_names, not_before, not_after)
            .context("cannot build the webhook serving certificate")?;
        let pem = |bytes: Vec<u8>| String::from_utf8(bytes).context("PEM is ASCII");
        Ok(WebhookTls {
            ca_crt: pem(ca.to_pem()?)?,
            tls_crt: pem(cert.to_pem()?)?,
            tls_key: pem(key.private_key_to_pem_pkcs8()?)?,
            not_after: jiff::Timestamp::from_second(not_after)?.to_string(),
        })
    }
}

fn ec_key() -> anyhow::Result<PKey<Private>> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    Ok(PKey::from_ec_key(EcKey::generate(&group)?)?)
}

fn name(common_name: &str) -> anyhow::Result<X509Name> {
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_nid(Nid::ORGANIZATIONNAME, "kube-devops")?;
    name.append_entry_by_nid(Nid::COMMONNAME, common_name)?;
    Ok(name.build())
}

fn serial() -> anyhow::Result<Asn1Integer> {
    let mut bn = BigNum::new()?;
    bn.rand(127, MsbOption::MAYBE_ZERO, false)?;
    Ok(bn.to_asn1_integer()?)
}

fn builder(subject: &X509Name, not_before: i64, not_after: i64) -> anyhow::Result<openssl::x509::X509Builder> {
    let mut b = X509::builder()?;
    b.set_version(2)?;
    let (serial, start, end) = (serial()?, Asn1Time::from_unix(not_before as _)?, Asn1Time::from_unix(not_after as _)?);
    b.set_serial_number(&serial)?;
    b.set_subject_name(subject)?;
    b.set_not_before(&start)?;
    b.set_not_after(&end)?;
    Ok(b)
}

fn ca_certificate(key: &PKey<Private>, not_before: i64, not_after: i64) -> anyhow::Result<X509> {
    let subject = name("kube-devops-webhook-ca")?;
    let mut b = builder(&subject, not_before, not_after)?;
    b.set_issuer_name(&subject)?;
    b.set_pubkey(key)?;
    b.append_extension(BasicConstraints::new().critical().ca().pathlen(0).build()?)?;
    b.append_extension(KeyUsage::new().critical().key_cert_sign().crl_sign().build()?)?;
    let ski = SubjectKeyIdentifier::new().build(&b.x509v3_context(None, None))?;
    b.append_extension(ski)?;
    b.sign(key, MessageDigest::sha256())?;
    Ok(b.build())
}

fn serving_certificate(
    key: &PKey<Private>,
    ca: &X509,
    ca_key: &PKey<Private>,
    dns_names: &[String],
    not_before: i64,
    not_after: i64,
) -> anyhow::Result<X509> {
    let common_name = dns_names.first().context("at least one DNS name")?;
    let mut b = builder(&name(common_name)?, not_before, not_after)?;
    b.set_issuer_name(ca.subject_name())?;
    b.set_pubkey(key)?;
    b.append_extension(BasicConstraints::new().critical().build()?)?;
    b.append_extension(KeyUsage::new().critical().digital_signature().build()?)?;
    b.append_extension(ExtendedKeyUsage::new().server_auth().build()?)?;
    let mut san = SubjectAlternativeName::new();
    for dns in dns_names {
        san.dns(dns);
    }
    let san = san.build(&b.x509v3_context(Some(ca), None))?;
    b.append_extension(san)?;
    let aki = AuthorityKeyIdentifier::new().keyid(true).build(&b.x509v3_context(Some(ca), None))?;
    b.append_extension(aki)?;
    b.sign(ca_key, MessageDigest::sha256())?;
    Ok(b.build())
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::stack::Stack;
    use openssl::x509::store::X509StoreBuilder;
    use openssl::x509::{X509StoreContext, X509VerifyResult};

    fn names() -> Vec<String> {
        crate::manifests::services::dns_names("kube-devops-webhook", "kube-devops")
    }

    #[test]
    fn the_serving_certificate_verifies_against_the_ca_for_every_service_name() {
        let tls = WebhookTls::generate(&names()).unwrap();
        let ca = X509::from_pem(tls.ca_crt.as_bytes()).unwrap();
        let cert = X509::from_pem(tls.tls_crt.as_bytes()).unwrap();
        let mut store = X509StoreBuilder::new().unwrap();
        store.add_cert(ca).unwrap();
        let store = store.build();
        let mut ctx = X509StoreContext::new().unwrap();
        let verified = ctx.init(&store, &cert, &Stack::new().unwrap(), |c| c.verify_cert()).unwrap();
        assert!(verified);
        assert_eq!(ctx.error(), X509VerifyResult::OK);
        let sans: Vec<_> = cert.subject_alt_names().unwrap().iter().map(|n| n.dnsname().unwrap().to_string()).collect();
        assert_eq!(sans, names());
        assert!(sans.contains(&"kube-devops-webhook.kube-devops.svc".to_string()));
        let key = PKey::private_key_from_pem(tls.tls_key.as_bytes()).unwrap();
        assert!(cert.public_key().unwrap().public_eq(&key));
    }

    #[test]
    fn certificates_expire_within_a_year_and_are_unique() {
        let a = WebhookTls::generate(&names()).unwrap();
        let b = WebhookTls::generate(&names()).unwrap();
        assert_ne!(a.tls_key, b.tls_key);
        let cert = X509::from_pem(a.tls_crt.as_bytes()).unwrap();
        let in_a_year = Asn1Time::days_from_now(366).unwrap();
        assert!(cert.not_after() < in_a_year);
        assert!(cert.not_after() > Asn1Time::days_from_now(364).unwrap());
        let not_after: jiff::Timestamp = a.not_after.parse().unwrap();
        let diff = cert.not_after().diff(&Asn1Time::from_unix(not_after.as_second() as _).unwrap()).unwrap();
        assert_eq!((diff.days, diff.secs), (0, 0));
        assert!(!format!("{a:?}").contains("PRIVATE"), "Debug hides the key");
    }
}
