//! A generated part of a hand-kept document: the text between two marker lines (HTML comments,
//! invisible once rendered), which a bench command rewrites on each run and nothing else.

/// The markers around one generated part.
#[derive(Clone, Copy, Debug)]
pub struct Markers {
    pub begin: &'static str,
    pub end: &'static str,
}

impl Markers {
    /// `doc` with what lies between the markers replaced by `text`.
    pub fn replace(self, doc: &str, text: &str) -> Result<String, String> {
        let Markers { begin, end } = self;
        let start = doc.find(begin).ok_or(format!("no `{begin}` line"))? + begin.len();
        let stop = doc[start..].find(end).ok_or(format!("no `{end}` after `{begin}`"))? + start;
        Ok(format!("{}\n{text}{}", &doc[..start], &doc[stop..]))
    }

    /// `text` between the markers, for a document written whole.
    pub fn around(self, text: &str) -> String {
        format!("{}\n{text}{}\n", self.begin, self.end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MARKERS: Markers = Markers { begin: "<!-- b -->", end: "<!-- e -->" };

    #[test]
    fn only_what_lies_between_the_markers_is_replaced() {
        let doc = "intro\n<!-- b -->\nold table\n<!-- e -->\nafter\n";
        let new = MARKERS.replace(doc, "| new |\n").unwrap();
        assert_eq!(new, "intro\n<!-- b -->\n| new |\n<!-- e -->\nafter\n");
        assert_eq!(MARKERS.replace(&new, "| new |\n").unwrap(), new, "a second run writes the same");
        assert!(MARKERS.replace("no markers", "x").is_err());
        assert_eq!(MARKERS.replace(&format!("intro\n{}", MARKERS.around("| x |\n")), "| y |\n").unwrap(), "intro\n<!-- b -->\n| y |\n<!-- e -->\n");
    }
}
