//! The integration's configuration as a typed value: one struct per connector, whose fields are
//! the keys it accepts.

use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use crate::ConnectionConfig;

/// The configuration key holding an integration's extra CA certificates (PEM). The host reads
/// it, for every connector, before the connector runs; [`ConnectionConfig::settings`] accepts it
/// for that reason.
pub const CA_CERTIFICATES: &str = "caCertificates";

impl ConnectionConfig {
    /// The integration's configuration as a `T`, refused (with a message naming the key) when it
    /// holds a key that `T` does not name: a typo must not silently weaken a check.
    /// [`CA_CERTIFICATES`] is accepted too and left out of `T` (the host has read it already).
    ///
    /// A field whose value does not fit its type is refused as `` `key`: `` and serde's message.
    /// A struct with a `#[serde(flatten)]` map field takes any key (the rest lands there).
    ///
    /// ```no_run
    /// use serde::Deserialize;
    /// use serde_json::Value;
    /// use stella_connector_sdk::prelude::*;
    ///
    /// #[derive(Deserialize)]
    /// #[serde(rename_all = "camelCase")]
    /// struct Keys {
    ///     /// The project to check.
    ///     project: Option<String>,
    ///     /// Checked by hand, for a message of the connector's own.
    ///     required_scopes: Option<Value>,
    /// }
    ///
    /// fn project(config: &ConnectionConfig) -> Result<Option<String>, String> {
    ///     // `{"projekt": "x"}` is refused with "unknown configuration key `projekt`
    ///     // (known: project, requiredScopes, caCertificates)".
    ///     Ok(config.settings::<Keys>()?.project)
    /// }
    /// ```
    pub fn settings<T: DeserializeOwned>(&self) -> Result<T, String> {
        typed(self, true)
    }

    /// [`ConnectionConfig::settings`] for a connector that sends no request: [`CA_CERTIFICATES`]
    /// would have nothing to apply to, so it is refused like any key `T` does not name.
    pub fn settings_without_ca<T: DeserializeOwned>(&self) -> Result<T, String> {
        typed(self, false)
    }
}

/// For `#[serde(default, deserialize_with = "stella_connector_sdk::keep_null")]` on an
/// `Option<serde_json::Value>` field: an explicit `null` is `Some(Value::Null)`, where serde
/// would read it as absent (`None`).
pub fn keep_null<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

fn typed<T: DeserializeOwned>(config: &ConnectionConfig, accept_ca: bool) -> Result<T, String> {
    // Not an object: no key at all (the host sends an object).
    let entries = match crate::configuration(config) {
        Value::Object(entries) => entries,
        _ => Map::new(),
    };
    T::deserialize(Keys { entries, accept_ca }).map_err(|e| e.to_string())
}

/// The configuration object, as a deserializer that checks its keys against a struct's fields.
struct Keys {
    entries: Map<String, Value>,
    accept_ca: bool,
}

impl<'de> de::Deserializer<'de> for Keys {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_map(Entries { entries: self.entries.into_iter(), value: None })
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        let mut entries = self.entries;
        let ca = self.accept_ca && !fields.contains(&CA_CERTIFICATES);
        let known = |key: &str| fields.contains(&key) || (ca && key == CA_CERTIFICATES);
        if let Some(unknown) = entries.keys().find(|k| !known(k)) {
            let mut names = fields.to_vec();
            if ca {
                names.push(CA_CERTIFICATES);
            }
            return Err(de::Error::custom(format!(
                "unknown configuration key `{unknown}` (known: {})",
                names.join(", ")
            )));
        }
        if ca {
            entries.remove(CA_CERTIFICATES);
        }
        visitor.visit_map(Entries { entries: entries.into_iter(), value: None })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
        unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
    }
}

/// The entries of the configuration object; a value that does not fit is refused with its key.
struct Entries {
    entries: serde_json::map::IntoIter,
    value: Option<(String, Value)>,
}

impl<'de> MapAccess<'de> for Entries {
    type Error = serde_json::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Self::Error> {
        let Some((key, value)) = self.entries.next() else { return Ok(None) };
        let name = seed.deserialize(key.as_str().into_deserializer())?;
        self.value = Some((key, value));
        Ok(Some(name))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Self::Error> {
        let (key, value) = self.value.take().ok_or_else(|| de::Error::custom("a value asked for before its key"))?;
        seed.deserialize(value).map_err(|e| de::Error::custom(format!("`{key}`: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::IntegrationType;

    fn connection(configuration: Value) -> ConnectionConfig {
        ConnectionConfig {
            integration_id: "id".into(),
            name: "name".into(),
            integration_type: IntegrationType::Registry,
            provider: "acme".into(),
            base_url: None,
            auth_ref: None,
            configuration: configuration.to_string(),
            environment: None,
        }
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "camelCase")]
    struct Keys {
        project: Option<String>,
        check_crumb: Option<bool>,
        #[serde(default, deserialize_with = "keep_null")]
        expected_value: Option<Value>,
    }

    #[derive(Debug, Deserialize)]
    struct Open {
        outcome: Option<String>,
        #[serde(flatten)]
        _rest: Map<String, Value>,
    }

    #[test]
    fn the_keys_are_the_struct_s_fields_and_the_host_s_ca_certificates() {
        let c: Keys = connection(json!({"project": "p", "caCertificates": "PEM"})).settings().unwrap();
        assert_eq!(c, Keys { project: Some("p".into()), check_crumb: None, expected_value: None });
        assert_eq!(
            connection(json!({"project": "p", "projekt": "p"})).settings::<Keys>().unwrap_err(),
            "unknown configuration key `projekt` (known: project, checkCrumb, expectedValue, caCertificates)"
        );
        assert_eq!(
            connection(json!({"caCertificates": "PEM"})).settings_without_ca::<Keys>().unwrap_err(),
            "unknown configuration key `caCertificates` (known: project, checkCrumb, expectedValue)"
        );
        assert_eq!(connection(json!([1])).settings::<Keys>().unwrap().project, None, "not an object: no key");
    }

    #[test]
    fn a_value_of_the_wrong_type_is_refused_with_its_key() {
        let refused = connection(json!({"checkCrumb": "yes"})).settings::<Keys>().unwrap_err();
        assert_eq!(refused, "`checkCrumb`: invalid type: string \"yes\", expected a boolean");
    }

    #[test]
    fn null_is_absent_unless_kept() {
        let c: Keys = connection(json!({"project": null, "expectedValue": null})).settings().unwrap();
        assert_eq!((c.project, c.expected_value), (None, Some(Value::Null)));
    }

    #[test]
    fn a_flattened_map_takes_any_key() {
        let c: Open = connection(json!({"outcome": "failure", "apiKey": "x"})).settings().unwrap();
        assert_eq!(c.outcome.as_deref(), Some("failure"));
    }
}
