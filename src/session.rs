//! [`Session`] and [`SessionBuilder`]: metadata and its validation, nothing else.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::{Error, Result, SessionId};

/// The longest session name accepted, in characters (not bytes).
pub const MAX_NAME_CHARS: usize = 50;

/// The metadata of one session: id, name, project directory and times.
///
/// A `Session` is a plain value, valid by construction: its project path is canonical
/// (absolute, symlinks and `..` resolved), exists, is a directory and is UTF-8; its name
/// is trimmed, non-empty, at most [`MAX_NAME_CHARS`] characters, without control
/// characters and without invisible or layout-changing ones (Unicode format characters
/// such as zero-width spaces and bidirectional overrides, and the line and paragraph
/// separators), which would let two names look alike or reorder the text around them.
/// Registries and supervisors hand out copies of it; a copy costs a
/// reference count, not an allocation.
///
/// # Examples
///
/// ```
/// use session_supervisor::Session;
///
/// let dir = std::env::temp_dir();
/// let session = Session::new(&dir).unwrap();
/// assert_eq!(session.project_path(), dir.canonicalize().unwrap());
/// assert_eq!(session.created_at(), session.updated_at());
///
/// let named = Session::builder(&dir).name("  scratch ").build().unwrap();
/// assert_eq!(named.name(), "scratch");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Session {
    /// Shared: registries and lookups hand out copies, which then cost a reference
    /// count instead of two allocations; `rename` copies on write.
    data: Arc<Data>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Data {
    id: SessionId,
    name: String,
    /// Canonical and UTF-8 by validation; text, so the registry can key on it as is.
    project_path: String,
    created_at: SystemTime,
    updated_at: SystemTime,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let data = &*self.data;
        f.debug_struct("Session")
            .field("id", &data.id)
            .field("name", &data.name)
            .field("project_path", &data.project_path)
            .field("created_at", &data.created_at)
            .field("updated_at", &data.updated_at)
            .finish()
    }
}

impl Session {
    /// Creates a session for a project directory, with a new id and the directory's
    /// name as its name.
    ///
    /// A default name longer than [`MAX_NAME_CHARS`] is cut to that length.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidPath`] if the path is empty, does not exist, is not a directory,
    /// cannot be resolved or is not UTF-8; [`Error::InvalidName`] if the directory's name
    /// is only whitespace or holds control, invisible or layout-changing characters (see
    /// [`Session`]).
    pub fn new(project_path: impl AsRef<Path>) -> Result<Session> {
        Session::builder(project_path).build()
    }

    /// Starts a [`SessionBuilder`] to set the name or the id.
    pub fn builder(project_path: impl AsRef<Path>) -> SessionBuilder {
        SessionBuilder {
            project_path: project_path.as_ref().to_path_buf(),
            name: None,
            id: None,
        }
    }

    /// The session's id.
    #[must_use]
    pub fn id(&self) -> SessionId {
        self.data.id
    }

    /// The session's name. Names need not be unique.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.data.name
    }

    /// The canonical project directory.
    #[must_use]
    pub fn project_path(&self) -> &Path {
        Path::new(&self.data.project_path)
    }

    /// The canonical project path as text (it is UTF-8 by validation).
    pub(crate) fn path_text(&self) -> &str {
        &self.data.project_path
    }

    /// When the session was created.
    #[must_use]
    pub fn created_at(&self) -> SystemTime {
        self.data.created_at
    }

    /// When the session's metadata last changed; never before [`created_at`](Self::created_at).
    #[must_use]
    pub fn updated_at(&self) -> SystemTime {
        self.data.updated_at
    }

    /// Renames the session and moves [`updated_at`](Self::updated_at) forward.
    ///
    /// The name is trimmed first. `updated_at` always moves forward, even if the wall
    /// clock reads the same or an earlier time.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidName`] if the name is empty after trimming, longer than
    /// [`MAX_NAME_CHARS`] characters or holds control, invisible or layout-changing
    /// characters (see [`Session`]); the session is then unchanged.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_supervisor::Session;
    ///
    /// let mut session = Session::new(std::env::temp_dir()).unwrap();
    /// let before = session.updated_at();
    /// session.rename("notes").unwrap();
    /// assert_eq!(session.name(), "notes");
    /// assert!(session.updated_at() > before);
    /// assert!(session.rename("   ").is_err());
    /// assert_eq!(session.name(), "notes");
    /// ```
    pub fn rename(&mut self, name: impl Into<String>) -> Result<()> {
        let name = validate_name(name.into())?;
        let data = Arc::make_mut(&mut self.data);
        data.name = name;
        data.updated_at = later(data.updated_at);
        Ok(())
    }

    /// A session from already validated parts (the `serde` feature restores with it).
    #[cfg(feature = "serde")]
    pub(crate) fn restore(
        id: SessionId,
        name: String,
        project_path: String,
        (created_at, updated_at): (SystemTime, SystemTime),
    ) -> Session {
        Session::from_data(Data {
            id,
            name,
            project_path,
            created_at,
            updated_at,
        })
    }

    fn from_data(data: Data) -> Session {
        Session {
            data: Arc::new(data),
        }
    }
}

/// Now, or just after `last` if the clock reads the same or an earlier time.
///
/// Never panics: if `last` is the latest time `SystemTime` can hold, there is no "just
/// after", and `last` itself is kept. Restored sessions cannot get there (their times
/// end with the year 9999), so this only keeps a bad clock from aborting a rename.
fn later(last: SystemTime) -> SystemTime {
    let now = SystemTime::now();
    match last.checked_add(Duration::from_nanos(1)) {
        Some(next) => now.max(next),
        None => now.max(last),
    }
}

/// Builds a [`Session`] with a chosen name or id.
///
/// This struct is created by [`Session::builder`].
///
/// # Examples
///
/// ```
/// use session_supervisor::{Session, SessionId};
///
/// let id = SessionId::new();
/// let session = Session::builder(std::env::temp_dir())
///     .name("tmp")
///     .id(id)
///     .build()
///     .unwrap();
/// assert_eq!(session.id(), id);
/// assert_eq!(session.name(), "tmp");
/// ```
#[derive(Debug)]
#[must_use = "a builder does nothing until .build() is called"]
pub struct SessionBuilder {
    project_path: PathBuf,
    name: Option<String>,
    id: Option<SessionId>,
}

impl SessionBuilder {
    /// Sets the name instead of the directory's name.
    pub fn name(mut self, name: impl Into<String>) -> SessionBuilder {
        self.name = Some(name.into());
        self
    }

    /// Sets the id instead of a new random one, e.g. to restore a saved session.
    pub fn id(mut self, id: SessionId) -> SessionBuilder {
        self.id = Some(id);
        self
    }

    /// Validates and builds the session.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidPath`] or [`Error::InvalidName`], as for [`Session::new`]: the
    /// name, given or default, is trimmed and must be non-empty, at most
    /// [`MAX_NAME_CHARS`] characters and free of control, invisible or layout-changing
    /// characters.
    pub fn build(self) -> Result<Session> {
        let project_path = canonical_dir(&self.project_path)?;
        let name = match self.name {
            Some(name) => validate_name(name)?,
            None => validate_name(default_name(Path::new(&project_path)))?,
        };
        let now = SystemTime::now();
        Ok(Session::from_data(Data {
            id: self.id.unwrap_or_default(),
            name,
            project_path,
            created_at: now,
            updated_at: now,
        }))
    }
}

/// Resolves `path` to a canonical, existing, UTF-8 directory, as text.
pub(crate) fn canonical_dir(path: &Path) -> Result<String> {
    let invalid = |reason: String| Error::InvalidPath {
        path: path.to_path_buf(),
        reason,
    };
    if path.as_os_str().is_empty() {
        return Err(invalid("the path is empty".into()));
    }
    let canonical = std::fs::canonicalize(path).map_err(|e| invalid(io_reason(&e)))?;
    if !canonical.is_dir() {
        return Err(invalid("not a directory".into()));
    }
    canonical
        .into_os_string()
        .into_string()
        .map_err(|_| invalid("the path is not valid UTF-8".into()))
}

fn io_reason(err: &io::Error) -> String {
    match err.kind() {
        io::ErrorKind::NotFound => "does not exist".into(),
        _ => format!("cannot be resolved: {err}"),
    }
}

/// The directory's own name, cut to [`MAX_NAME_CHARS`]; `/` for the root.
fn default_name(canonical: &Path) -> String {
    let name = canonical
        .file_name()
        .map_or_else(|| canonical.to_string_lossy(), |n| n.to_string_lossy());
    name.trim().chars().take(MAX_NAME_CHARS).collect()
}

/// Trims and checks a name.
pub(crate) fn validate_name(name: String) -> Result<String> {
    let trimmed = name.trim();
    let reason = if trimmed.is_empty() {
        "empty"
    } else if trimmed.chars().count() > MAX_NAME_CHARS {
        "longer than 50 characters"
    } else if trimmed.chars().any(char::is_control) {
        "contains control characters"
    } else if trimmed.chars().any(is_invisible) {
        "contains invisible or layout-changing characters"
    } else {
        return Ok(trimmed.to_owned());
    };
    Err(Error::InvalidName { name, reason })
}

/// Whether `c` is a format character (general category Cf) or a line or paragraph
/// separator (Zl, Zp): none shows as a glyph, yet each can hide in a name or change
/// how the text around it is laid out.
fn is_invisible(c: char) -> bool {
    c == '\u{2028}' || c == '\u{2029}' || is_format(c)
}

/// Whether `c` is in [`FORMAT_CHARS`].
fn is_format(c: char) -> bool {
    FORMAT_CHARS
        .binary_search_by(|&(first, last)| {
            if last < c {
                std::cmp::Ordering::Less
            } else if first > c {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

/// The characters of general category Cf (format) in Unicode 16, as sorted, disjoint,
/// inclusive ranges: written out because the standard library does not expose the
/// category and the crate takes no Unicode dependency for one check.
const FORMAT_CHARS: &[(char, char)] = &[
    ('\u{00AD}', '\u{00AD}'),   // soft hyphen
    ('\u{0600}', '\u{0605}'),   // Arabic number signs
    ('\u{061C}', '\u{061C}'),   // Arabic letter mark
    ('\u{06DD}', '\u{06DD}'),   // Arabic end of ayah
    ('\u{070F}', '\u{070F}'),   // Syriac abbreviation mark
    ('\u{0890}', '\u{0891}'),   // Arabic pound and piastre marks above
    ('\u{08E2}', '\u{08E2}'),   // Arabic disputed end of ayah
    ('\u{180E}', '\u{180E}'),   // Mongolian vowel separator
    ('\u{200B}', '\u{200F}'),   // zero-width space, (non-)joiners, LRM, RLM
    ('\u{202A}', '\u{202E}'),   // bidirectional embeddings and overrides
    ('\u{2060}', '\u{2064}'),   // word joiner, invisible operators
    ('\u{2066}', '\u{206F}'),   // bidirectional isolates, deprecated format chars
    ('\u{FEFF}', '\u{FEFF}'),   // zero-width no-break space (byte order mark)
    ('\u{FFF9}', '\u{FFFB}'),   // interlinear annotation
    ('\u{110BD}', '\u{110BD}'), // Kaithi number sign
    ('\u{110CD}', '\u{110CD}'), // Kaithi number sign above
    ('\u{13430}', '\u{1343F}'), // Egyptian hieroglyph format controls
    ('\u{1BCA0}', '\u{1BCA3}'), // shorthand format controls
    ('\u{1D173}', '\u{1D17A}'), // musical symbol beams, ties, slurs, phrases
    ('\u{E0001}', '\u{E0001}'), // language tag
    ('\u{E0020}', '\u{E007F}'), // tag characters
];

#[cfg(test)]
mod tests {
    use super::*;

    fn temp() -> PathBuf {
        std::env::temp_dir()
    }

    #[test]
    fn default_name_is_the_folder_name() {
        let dir = temp().canonicalize().unwrap();
        let session = Session::new(&dir).unwrap();
        assert_eq!(session.name(), dir.file_name().unwrap().to_str().unwrap());
    }

    #[test]
    fn names_are_trimmed_and_counted_in_characters() {
        let fifty_wide = "é".repeat(50);
        assert_eq!(
            validate_name(format!(" {fifty_wide} ")).unwrap(),
            fifty_wide
        );
        let err = validate_name("é".repeat(51)).unwrap_err();
        assert!(matches!(err, Error::InvalidName { reason, .. } if reason.contains("50")));
    }

    #[test]
    fn bad_names_are_refused_with_the_reason() {
        for (name, reason) in [
            ("", "empty"),
            ("  \t ", "empty"),
            ("a\nb", "contains control characters"),
            ("a\0b", "contains control characters"),
        ] {
            match validate_name(name.to_owned()) {
                Err(Error::InvalidName { name: n, reason: r }) => {
                    assert_eq!(n, name);
                    assert_eq!(r, reason);
                }
                other => panic!("{name:?} gave {other:?}"),
            }
        }
    }

    /// The characters the name rule is about, each of which must be refused.
    fn invisible_samples() -> Vec<char> {
        let bidi = ('\u{202A}'..='\u{202E}').chain('\u{2066}'..='\u{2069}');
        let zero_width = ('\u{200B}'..='\u{200F}').chain(['\u{FEFF}']);
        let separators = ['\u{2028}', '\u{2029}'];
        let others = ['\u{00AD}', '\u{061C}', '\u{180E}', '\u{2060}', '\u{E0001}'];
        let all: Vec<char> = bidi
            .chain(zero_width)
            .chain(separators)
            .chain(others)
            .collect();
        assert_eq!(all.len(), 5 + 4 + 6 + 2 + 5);
        all
    }

    #[test]
    fn invisible_and_layout_changing_characters_are_refused() {
        for c in invisible_samples() {
            let mut names = vec![format!("a{c}b")];
            // Whitespace (the separators) at either end is trimmed off like any other.
            if !c.is_whitespace() {
                names.extend([format!("{c}ab"), format!("ab{c}")]);
            }
            for name in names {
                match validate_name(name.clone()) {
                    Err(Error::InvalidName { name: n, reason }) => {
                        assert_eq!(n, name);
                        assert_eq!(reason, "contains invisible or layout-changing characters");
                    }
                    other => panic!("U+{:04X} in {name:?} gave {other:?}", u32::from(c)),
                }
            }
        }
    }

    #[test]
    fn line_and_paragraph_separators_at_the_ends_are_trimmed() {
        assert_eq!(
            validate_name("\u{2028}ab\u{2029}".to_owned()).unwrap(),
            "ab"
        );
    }

    #[test]
    fn a_name_of_only_a_zero_width_character_is_invisible_not_empty() {
        for name in ["\u{200B}", "\u{FEFF}", " \u{200B} "] {
            let err = validate_name(name.to_owned()).unwrap_err();
            assert!(
                matches!(err, Error::InvalidName { reason, .. } if reason.contains("invisible")),
                "{name:?}"
            );
        }
    }

    #[test]
    fn control_characters_keep_their_own_reason() {
        let err = validate_name("a\n\u{200B}b".to_owned()).unwrap_err();
        assert!(
            matches!(err, Error::InvalidName { reason, .. } if reason == "contains control characters")
        );
    }

    #[test]
    fn format_table_is_sorted_and_disjoint() {
        for &(first, last) in FORMAT_CHARS {
            assert!(first <= last, "{first:?}..={last:?}");
        }
        for pair in FORMAT_CHARS.windows(2) {
            // Not even adjacent: adjacent ranges would have been written as one.
            assert!(u32::from(pair[0].1) + 1 < u32::from(pair[1].0), "{pair:?}");
        }
    }

    #[test]
    fn format_lookup_covers_each_range_and_nothing_next_to_it() {
        for &(first, last) in FORMAT_CHARS {
            assert!(is_format(first) && is_format(last), "{first:?}..={last:?}");
            let before = char::from_u32(u32::from(first) - 1).unwrap();
            let after = char::from_u32(u32::from(last) + 1).unwrap();
            assert!(
                !is_format(before) && !is_format(after),
                "{first:?}..={last:?}"
            );
        }
    }

    #[test]
    fn visible_names_are_accepted() {
        for name in [
            "notes",
            "café",
            "日本語",
            "a-b_c.d",
            "a\u{2010}b",
            "x\u{202F}y",
        ] {
            assert_eq!(validate_name(name.to_owned()).unwrap(), name);
        }
    }

    /// The latest time `SystemTime` holds on this platform, found with `checked_add`.
    fn latest_system_time() -> SystemTime {
        let mut time = SystemTime::UNIX_EPOCH;
        let mut step = Duration::MAX;
        while !step.is_zero() {
            match time.checked_add(step) {
                Some(later) => time = later,
                None => step /= 2,
            }
        }
        time
    }

    #[test]
    fn later_than_the_latest_time_does_not_panic() {
        let max = latest_system_time();
        assert!(max.checked_add(Duration::from_nanos(1)).is_none());
        assert_eq!(later(max), max);
    }

    #[test]
    fn renaming_a_session_updated_at_the_latest_time_does_not_panic() {
        let mut session = Session::new(temp()).unwrap();
        Arc::make_mut(&mut session.data).updated_at = latest_system_time();
        session.rename("still fine").unwrap();
        assert_eq!(session.name(), "still fine");
        assert_eq!(session.updated_at(), latest_system_time());
    }

    #[test]
    fn path_is_made_canonical() {
        let dir = temp().canonicalize().unwrap();
        let spelled = dir.join(".").join("..").join(dir.file_name().unwrap());
        let session = Session::new(&spelled).unwrap();
        assert_eq!(session.project_path(), dir);
    }

    #[test]
    fn empty_path_is_invalid() {
        let err = Session::new("").unwrap_err();
        assert!(matches!(err, Error::InvalidPath { reason, .. } if reason.contains("empty")));
    }

    #[test]
    fn rename_failure_changes_nothing() {
        let mut session = Session::new(temp()).unwrap();
        let before = session.clone();
        assert!(session.rename("x".repeat(51)).is_err());
        assert_eq!(session, before);
    }

    #[test]
    fn updated_at_moves_forward_on_every_rename() {
        let mut session = Session::new(temp()).unwrap();
        let mut last = session.updated_at();
        for i in 0..100 {
            session.rename(format!("n{i}")).unwrap();
            assert!(session.updated_at() > last);
            last = session.updated_at();
        }
        assert!(session.created_at() < session.updated_at());
    }
}
