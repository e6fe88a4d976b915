//! Where some fields' values are in a document the transform just wrote: the scalar fields
//! operators' rules most often match on or redact (drainpipe-rules). Recorded while writing,
//! at no cost worth measuring, so that a rule reads `heroku.dyno` at its offset instead of
//! walking the document's JSON to find it.

use std::ops::Range;

/// A field whose value's place [`Landmarks`] records: one scalar (never an object or an
/// array), written at most once per document, under one path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Landmark {
    Message,
    EventDataset,
    DataStreamNamespace,
    LogLevel,
    HerokuApp,
    HerokuSource,
    HerokuDyno,
    HerokuProcessType,
    HttpRequestMethod,
    HttpResponseStatusCode,
    UrlOriginal,
    UrlPath,
    UrlQuery,
    UrlDomain,
}

impl Landmark {
    /// Every landmark with its field's dotted path.
    pub const ALL: [(Landmark, &'static str); 14] = [
        (Landmark::Message, "message"),
        (Landmark::EventDataset, "event.dataset"),
        (Landmark::DataStreamNamespace, "data_stream.namespace"),
        (Landmark::LogLevel, "log.level"),
        (Landmark::HerokuApp, "heroku.app"),
        (Landmark::HerokuSource, "heroku.source"),
        (Landmark::HerokuDyno, "heroku.dyno"),
        (Landmark::HerokuProcessType, "heroku.process_type"),
        (Landmark::HttpRequestMethod, "http.request.method"),
        (Landmark::HttpResponseStatusCode, "http.response.status_code"),
        (Landmark::UrlOriginal, "url.original"),
        (Landmark::UrlPath, "url.path"),
        (Landmark::UrlQuery, "url.query"),
        (Landmark::UrlDomain, "url.domain"),
    ];

    /// The landmark of the field at `path`, if it is one.
    pub fn of_path(path: &str) -> Option<Landmark> {
        Landmark::ALL.iter().find(|(_, p)| *p == path).map(|(l, _)| *l)
    }

    pub fn path(self) -> &'static str {
        Landmark::ALL.get(self as usize).map_or("", |(_, p)| p)
    }
}

/// Where a landmark's value is, from the document's first byte (`{`): a string's text between
/// its quotes (still JSON-escaped), or a number's digits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Place {
    pub string: bool,
    start: u32,
    end: u32,
}

impl Place {
    fn of(string: bool, span: Range<usize>) -> Option<Place> {
        Some(Place { string, start: u32::try_from(span.start).ok()?, end: u32::try_from(span.end).ok()? })
    }

    pub fn span(self) -> Range<usize> {
        self.start as usize..self.end as usize
    }
}

/// The places of the landmarks in one document, each `None` when the document has no such
/// field; or nothing known ([`Landmarks::default`]: a document not written by the transform's
/// writer, such as a data point's), when whoever reads them must look for themselves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Landmarks {
    known: bool,
    places: [Option<Place>; Landmark::ALL.len()],
    /// The `labels` object, braces and all: what a rule adding labels rewrites.
    labels: Option<Place>,
}

impl Landmarks {
    /// Every landmark known to be absent, until [`Landmarks::set`] places it.
    pub(crate) fn none_yet() -> Landmarks {
        Landmarks { known: true, ..Landmarks::default() }
    }

    /// `landmark`'s value is at `span` of the document (a string's when `string`). A span past
    /// what 32 bits hold (no document is that long) leaves the landmarks unknown.
    pub(crate) fn set(&mut self, landmark: Landmark, string: bool, span: Range<usize>) {
        match (Place::of(string, span), self.places.get_mut(landmark as usize)) {
            (Some(new), Some(place)) => *place = Some(new),
            _ => self.known = false,
        }
    }

    pub(crate) fn set_labels(&mut self, span: Range<usize>) {
        match Place::of(false, span) {
            Some(place) => self.labels = Some(place),
            None => self.known = false,
        }
    }

    /// The landmarks these place, each with its place: what a block written apart
    /// ([`crate::document::Blocks`]) keeps to add when it is copied in ([`Landmarks::add_shifted`]).
    /// `None` when they are not known.
    pub(crate) fn placed(&self) -> Option<Vec<(usize, Place)>> {
        self.known.then(|| self.places.iter().enumerate().filter_map(|(i, p)| Some((i, (*p)?))).collect())
    }

    /// Adds `placed` ([`Landmarks::placed`]), each moved `shift` bytes on.
    #[inline]
    pub(crate) fn add_shifted(&mut self, placed: Option<&[(usize, Place)]>, shift: usize) {
        let Some(placed) = placed else {
            self.known = false;
            return;
        };
        for &(i, p) in placed {
            match (Place::of(p.string, p.span().start + shift..p.span().end + shift), self.places.get_mut(i)) {
                (Some(moved), Some(place)) => *place = Some(moved),
                _ => self.known = false,
            }
        }
    }

    /// Where the `labels` object is, braces and all; `None` when the document has none.
    pub fn labels(&self) -> Option<Place> {
        self.labels.filter(|_| self.known)
    }

    /// Whether these landmarks say where each field is (or that it is absent).
    pub fn known(&self) -> bool {
        self.known
    }

    /// Where `landmark`'s value is; `None` when the document has none (or nothing is known).
    pub fn get(&self, landmark: Landmark) -> Option<Place> {
        self.places.get(landmark as usize).copied().flatten().filter(|_| self.known)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_landmark_is_at_its_own_position() {
        for (n, (landmark, path)) in Landmark::ALL.iter().enumerate() {
            assert_eq!(*landmark as usize, n);
            assert_eq!(Landmark::of_path(path), Some(*landmark));
            assert_eq!(landmark.path(), *path);
        }
        assert_eq!(Landmark::of_path("url"), None);
    }

    #[test]
    fn unknown_landmarks_place_nothing() {
        let mut marks = Landmarks::default();
        marks.set(Landmark::Message, true, 1..4);
        assert_eq!(marks.get(Landmark::Message), None);
        let mut marks = Landmarks::none_yet();
        marks.set(Landmark::Message, true, 1..4);
        assert_eq!(marks.get(Landmark::Message).map(Place::span), Some(1..4));
        assert_eq!(marks.get(Landmark::UrlPath), None);
    }
}
