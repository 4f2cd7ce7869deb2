//! Certificates for the API server (and for tests that need a CA): generated with OpenSSL.

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName};
use openssl::x509::{X509, X509NameBuilder};

/// A certificate and its private key, PEM-encoded.
#[derive(Clone, Debug)]
pub struct CertPair {
    pub cert_pem: String,
    pub key_pem: String,
}

fn key() -> anyhow::Result<PKey<Private>> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    Ok(PKey::from_ec_key(EcKey::generate(&group)?)?)
}

fn serial() -> anyhow::Result<openssl::asn1::Asn1Integer> {
    let mut bn = BigNum::new()?;
    bn.rand(127, MsbOption::MAYBE_ZERO, false)?;
    Ok(bn.to_asn1_integer()?)
}

/// A certificate for `key` named `common_name`, valid for a day (test clusters are short-lived),
/// issued by `issuer` (None: self-signed) with the given extensions.
fn certificate(
    common_name: &str,
    key: &PKey<Private>,
    issuer: Option<(&X509, &PKey<Private>)>,
    extensions: impl FnOnce(&mut openssl::x509::X509Builder, Option<&X509>) -> anyhow::Result<()>,
) -> anyhow::Result<X509> {
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_text("CN", common_name)?;
    let name = name.build();
    let mut b = X509::builder()?;
    b.set_version(2)?;
    let serial = serial()?;
    b.set_serial_number(&serial)?;
    b.set_subject_name(&name)?;
    b.set_issuer_name(issuer.map_or(&*name, |(ca, _)| ca.subject_name()))?;
    b.set_pubkey(key)?;
    b.set_not_before(&*Asn1Time::days_from_now(0)?)?;
    b.set_not_after(&*Asn1Time::days_from_now(1)?)?;
    extensions(&mut b, issuer.map(|(ca, _)| ca))?;
    b.sign(issuer.map_or(key, |(_, k)| k), MessageDigest::sha256())?;
    Ok(b.build())
}

fn pem(cert: &X509, key: &PKey<Private>) -> anyhow::Result<CertPair> {
    Ok(CertPair {
        cert_pem: String::from_utf8(cert.to_pem()?)?,
        key_pem: String::from_utf8(key.private_key_to_pem_pkcs8()?)?,
    })
}

/// A self-signed CA.
pub fn ca(common_name: &str) -> anyhow::Result<(CertPair, X509, PKey<Private>)> {
    let key = key()?;
    let cert = certificate(common_name, &key, None, |b, _| {
        b.append_extension(BasicConstraints::new().critical().ca().build()?)?;
        b.append_extension(KeyUsage::new().critical().key_cert_sign().crl_sign().build()?)?;
        Ok(())
    })?;
    Ok((pem(&cert, &key)?, cert, key))
}

/// A serving certificate signed by `ca` for the given DNS names and IP addresses.
pub fn serving(ca: &X509, ca_key: &PKey<Private>, dns: &[&str], ips: &[&str]) -> anyhow::Result<CertPair> {
    let key = key()?;
    let common_name = dns.first().copied().unwrap_or("testkit");
    let cert = certificate(common_name, &key, Some((ca, ca_key)), |b, issuer| {
        let mut san = SubjectAlternativeName::new();
        for d in dns {
            san.dns(d);
        }
        for ip in ips {
            san.ip(ip);
        }
        let san = san.build(&b.x509v3_context(issuer.map(|c| &**c), None))?;
        b.append_extension(san)?;
        b.append_extension(ExtendedKeyUsage::new().server_auth().build()?)?;
        b.append_extension(KeyUsage::new().critical().digital_signature().key_encipherment().build()?)?;
        Ok(())
    })?;
    pem(&cert, &key)
}

/// A random token of 32 hex characters.
pub fn random_token() -> String {
    let mut bytes = [0u8; 16];
    openssl::rand::rand_bytes(&mut bytes).expect("OpenSSL random bytes");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
