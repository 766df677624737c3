//! Atlassian Document Format (ADF), the rich-text JSON Jira Cloud's REST v3 takes for
//! descriptions and comments, as typed values.
//!
//! Building ADF as Rust values (never by formatting JSON text) is what keeps attacker text
//! from changing the document: text only ever lands in a `text` node's string, which
//! `serde_json` escapes. [`text`] also drops what ADF refuses (empty text nodes, control
//! characters) and turns newlines into `hardBreak` nodes.
//!
//! ```
//! use vowguard_jira::adf::{Block, Doc, text};
//! let doc = Doc::new(vec![Block::paragraph(text("line one\n\"}] <b>two"))]);
//! let json = serde_json::to_value(&doc).unwrap();
//! assert_eq!(json["content"][0]["content"][1]["type"], "hardBreak");
//! assert_eq!(json["content"][0]["content"][2]["text"], "\"}] <b>two");
//! ```

use serde::Serialize;

/// An ADF document (`{"type":"doc","version":1,"content":[...]}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Doc {
    #[serde(rename = "type")]
    kind: DocKind,
    version: u8,
    /// The top-level blocks.
    pub content: Vec<Block>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
enum DocKind {
    Doc,
}

impl Doc {
    /// A version-1 document of `content`. An empty document gets one empty paragraph (Jira
    /// refuses a doc without content).
    pub fn new(mut content: Vec<Block>) -> Self {
        if content.is_empty() {
            content.push(Block::paragraph(Vec::new()));
        }
        Self {
            kind: DocKind::Doc,
            version: 1,
            content,
        }
    }
}

/// A block node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
#[non_exhaustive]
pub enum Block {
    /// A paragraph of inline nodes.
    Paragraph {
        /// The text.
        content: Vec<Inline>,
    },
    /// A heading.
    Heading {
        /// Its level.
        attrs: HeadingAttrs,
        /// The text.
        content: Vec<Inline>,
    },
    /// A bulleted list.
    BulletList {
        /// The items.
        content: Vec<ListItem>,
    },
    /// A list of action items (checkboxes).
    TaskList {
        /// The list's id.
        attrs: LocalId,
        /// The items.
        content: Vec<TaskItem>,
    },
}

impl Block {
    /// A paragraph.
    pub fn paragraph(content: Vec<Inline>) -> Self {
        Self::Paragraph { content }
    }

    /// A heading of `level` (1-6, clamped).
    pub fn heading(level: u8, content: Vec<Inline>) -> Self {
        Self::Heading {
            attrs: HeadingAttrs {
                level: level.clamp(1, 6),
            },
            content,
        }
    }

    /// A bulleted list, one paragraph per item.
    pub fn bullet_list(items: Vec<Vec<Inline>>) -> Self {
        Self::BulletList {
            content: items
                .into_iter()
                .map(|inline| ListItem {
                    kind: ListItemKind::ListItem,
                    content: vec![Block::paragraph(inline)],
                })
                .collect(),
        }
    }

    /// An action-item list; ids are `<id>` for the list and `<id>-<n>` for items.
    pub fn task_list(id: &str, items: Vec<Vec<Inline>>) -> Self {
        Self::TaskList {
            attrs: LocalId {
                local_id: id.to_owned(),
            },
            content: items
                .into_iter()
                .enumerate()
                .map(|(n, content)| TaskItem {
                    kind: TaskItemKind::TaskItem,
                    attrs: TaskItemAttrs {
                        local_id: format!("{id}-{}", n + 1),
                        state: TaskState::Todo,
                    },
                    content,
                })
                .collect(),
        }
    }
}

/// A heading's attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct HeadingAttrs {
    /// 1 to 6.
    pub level: u8,
}

/// A `localId` attribute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LocalId {
    /// The id.
    #[serde(rename = "localId")]
    pub local_id: String,
}

/// One item of a bulleted list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListItem {
    #[serde(rename = "type")]
    kind: ListItemKind,
    /// The item's blocks.
    pub content: Vec<Block>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
enum ListItemKind {
    ListItem,
}

/// One action item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaskItem {
    #[serde(rename = "type")]
    kind: TaskItemKind,
    attrs: TaskItemAttrs,
    /// The item's text.
    pub content: Vec<Inline>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
enum TaskItemKind {
    TaskItem,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct TaskItemAttrs {
    #[serde(rename = "localId")]
    local_id: String,
    state: TaskState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
enum TaskState {
    Todo,
}

/// An inline node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
#[non_exhaustive]
pub enum Inline {
    /// Text (never empty).
    Text {
        /// The characters.
        text: String,
        /// Formatting.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        marks: Vec<Mark>,
    },
    /// A line break.
    HardBreak,
}

/// Text formatting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
#[non_exhaustive]
pub enum Mark {
    /// Bold.
    Strong,
    /// Monospace.
    Code,
}

/// `s` as inline nodes: lines become text nodes separated by `hardBreak`s; `\r` and other
/// control characters (tabs excepted) become spaces; empty text nodes are left out.
pub fn text(s: &str) -> Vec<Inline> {
    marked(s, &[])
}

/// Like [`text`], every text node carrying `marks`.
pub fn marked(s: &str, marks: &[Mark]) -> Vec<Inline> {
    let mut out = Vec::new();
    for (i, line) in s.split('\n').enumerate() {
        if i > 0 {
            out.push(Inline::HardBreak);
        }
        let clean: String = line
            .chars()
            .map(|c| if c.is_control() && c != '\t' { ' ' } else { c })
            .collect();
        if !clean.is_empty() {
            out.push(Inline::Text {
                text: clean,
                marks: marks.to_vec(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn golden_document() {
        let doc = Doc::new(vec![
            Block::paragraph(text("a\nb")),
            Block::heading(3, marked("Tasks", &[Mark::Strong])),
            Block::task_list("t", vec![text("lock")]),
            Block::bullet_list(vec![text("x")]),
        ]);
        assert_eq!(
            serde_json::to_value(&doc).unwrap(),
            json!({"type":"doc","version":1,"content":[
                {"type":"paragraph","content":[
                    {"type":"text","text":"a"},{"type":"hardBreak"},{"type":"text","text":"b"}]},
                {"type":"heading","attrs":{"level":3},"content":[
                    {"type":"text","text":"Tasks","marks":[{"type":"strong"}]}]},
                {"type":"taskList","attrs":{"localId":"t"},"content":[
                    {"type":"taskItem","attrs":{"localId":"t-1","state":"TODO"},"content":[
                        {"type":"text","text":"lock"}]}]},
                {"type":"bulletList","content":[
                    {"type":"listItem","content":[{"type":"paragraph","content":[
                        {"type":"text","text":"x"}]}]}]}
            ]})
        );
    }

    #[test]
    fn empty_doc_and_text() {
        let doc = serde_json::to_value(Doc::new(Vec::new())).unwrap();
        assert_eq!(doc["content"], json!([{"type":"paragraph","content":[]}]));
        assert_eq!(text(""), Vec::<Inline>::new());
        assert_eq!(text("\n"), vec![Inline::HardBreak]);
        assert_eq!(
            text("a\r\u{0}b"),
            vec![Inline::Text {
                text: "a  b".into(),
                marks: vec![]
            }]
        );
    }
}
