//! [`SessionId`]: the identity of a session.

use std::fmt;
use std::str::FromStr;

use uuid::{Uuid, Variant, Version};

use crate::Error;

/// The identity of a session: a random UUID version 4 of the RFC 4122 variant.
///
/// It prints as the lowercase hyphenated form and parses back from it (and from the
/// other spellings of a UUID the `uuid` crate accepts), so ids can be stored and typed
/// by people.
///
/// # Examples
///
/// ```
/// use session_supervisor::SessionId;
///
/// let id = SessionId::new();
/// let text = id.to_string();
/// assert_eq!(text.len(), 36);
/// assert_eq!(text.parse::<SessionId>().unwrap(), id);
/// assert!("not-an-id".parse::<SessionId>().is_err());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct SessionId(Uuid);

impl SessionId {
    /// Creates a new random id.
    #[must_use]
    pub fn new() -> SessionId {
        SessionId(Uuid::new_v4())
    }

    /// The UUID behind this id.
    #[must_use]
    pub fn as_uuid(&self) -> &Uuid {
        &self.0
    }
}

impl std::hash::Hash for SessionId {
    /// One 16-byte write: ids are the registry's most hashed keys.
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u128(self.0.as_u128());
    }
}

impl Default for SessionId {
    /// Same as [`SessionId::new`]: a fresh random id.
    fn default() -> SessionId {
        SessionId::new()
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({})", self.0.hyphenated())
    }
}

impl FromStr for SessionId {
    type Err = Error;

    /// Parses a UUID version 4 of the RFC 4122 variant, the only kind
    /// [`SessionId::new`] makes.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidId`] if the text is not a UUID, is one of another variant (NCS,
    /// Microsoft or future), or is one of another version.
    fn from_str(text: &str) -> Result<SessionId, Error> {
        let invalid = |reason: String| Error::InvalidId {
            input: text.to_owned(),
            reason,
        };
        let uuid = Uuid::parse_str(text).map_err(|e| invalid(e.to_string()))?;
        // The variant first: outside RFC 4122 the version nibble means nothing.
        let variant = uuid.get_variant();
        if variant != Variant::RFC4122 {
            return Err(invalid(format!("not an RFC 4122 uuid: variant {variant}")));
        }
        match uuid.get_version() {
            Some(Version::Random) => Ok(SessionId(uuid)),
            _ => Err(invalid(format!(
                "not a version 4 (random) uuid: version {}",
                uuid.get_version_num()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_lowercase_hyphenated_and_round_trips() {
        let id = SessionId::new();
        let text = id.to_string();
        assert_eq!(text, text.to_lowercase());
        assert_eq!(text.matches('-').count(), 4);
        assert_eq!(text.parse::<SessionId>().unwrap(), id);
        assert_eq!(text.to_uppercase().parse::<SessionId>().unwrap(), id);
    }

    #[test]
    fn new_ids_differ() {
        assert_ne!(SessionId::new(), SessionId::new());
    }

    #[test]
    fn bad_text_is_invalid_id() {
        for bad in ["", "xyz", "123e4567-e89b-12d3-a456-42661417400"] {
            match bad.parse::<SessionId>() {
                Err(Error::InvalidId { input, .. }) => assert_eq!(input, bad),
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn other_uuid_versions_are_rejected() {
        // A version 1 uuid: valid text, but not an id this crate makes.
        let v1 = "123e4567-e89b-12d3-a456-426614174000";
        assert!(matches!(
            v1.parse::<SessionId>(),
            Err(Error::InvalidId { .. })
        ));
    }

    #[test]
    fn version_4_of_other_variants_is_rejected_naming_the_variant() {
        // All version 4; the variant is in the top bits of the 17th hex digit.
        for (text, variant) in [
            ("123e4567-e89b-42d3-0456-426614174000", "NCS"),
            ("123e4567-e89b-42d3-7456-426614174000", "NCS"),
            ("123e4567-e89b-42d3-c456-426614174000", "Microsoft"),
            ("123e4567-e89b-42d3-d456-426614174000", "Microsoft"),
            ("123e4567-e89b-42d3-e456-426614174000", "Future"),
            ("123E4567-E89B-42D3-F456-426614174000", "Future"),
        ] {
            match text.parse::<SessionId>() {
                Err(Error::InvalidId { input, reason }) => {
                    assert_eq!(input, text);
                    assert_eq!(reason, format!("not an RFC 4122 uuid: variant {variant}"));
                }
                other => panic!("{text:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn version_4_of_the_rfc_4122_variant_is_accepted() {
        // The variant digit may be 8, 9, a or b.
        for text in [
            "123e4567-e89b-42d3-8456-426614174000",
            "123e4567-e89b-42d3-9456-426614174000",
            "123e4567-e89b-42d3-a456-426614174000",
            "123e4567-e89b-42d3-b456-426614174000",
        ] {
            let id: SessionId = text.parse().unwrap();
            assert_eq!(id.to_string(), text);
        }
    }

    #[test]
    fn the_nil_and_max_uuids_are_rejected() {
        for text in [
            "00000000-0000-0000-0000-000000000000",
            "ffffffff-ffff-ffff-ffff-ffffffffffff",
        ] {
            assert!(matches!(
                text.parse::<SessionId>(),
                Err(Error::InvalidId { reason, .. }) if reason.contains("variant")
            ));
        }
    }
}
