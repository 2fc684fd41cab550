//! The repository's markdown stands alone: every relative link and image of every markdown file
//! (README.md, docs/, data/README.md, …) points at a file or folder that exists, inside the
//! repository.

mod common;

use std::fs;
use std::path::{Component, Path, PathBuf};

use pulldown_cmark::{Event, Parser, Tag};

/// Folders that are not part of the repository's content.
const SKIP_DIRS: &[&str] = &["target", ".venv", ".git", ".jupyter-home", "node_modules"];

/// Every `.md` file under `dir`, outside [`SKIP_DIRS`] and hidden folders.
fn markdown_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            if !name.starts_with('.') && !SKIP_DIRS.contains(&name.as_str()) {
                markdown_files(&path, out);
            }
        } else if name.ends_with(".md") {
            out.push(path);
        }
    }
}

/// The link and image targets of a markdown text, with `src`/`href` of inline HTML.
fn targets(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for event in Parser::new(text) {
        match event {
            Event::Start(Tag::Link { dest_url, .. })
            | Event::Start(Tag::Image { dest_url, .. }) => found.push(dest_url.to_string()),
            Event::Html(html) | Event::InlineHtml(html) => {
                for attr in ["src=\"", "href=\""] {
                    for (i, _) in html.match_indices(attr) {
                        let rest = &html[i + attr.len()..];
                        found.push(rest[..rest.find('"').unwrap_or(rest.len())].to_string());
                    }
                }
            }
            _ => {}
        }
    }
    found
}

/// Why a link target from the markdown file `file` is broken, if it is. Links with a scheme
/// (`https:`, `mailto:`) and links within the page (`#…`) are not checked.
fn problem(file: &Path, target: &str) -> Option<String> {
    let path = target.split(['#', '?']).next().unwrap_or("");
    let has_scheme = path
        .split_once(':')
        .is_some_and(|(scheme, _)| !scheme.is_empty() && !scheme.contains('/'));
    if path.is_empty() || has_scheme {
        return None;
    }
    if path.starts_with('/') {
        return Some("an absolute path: link relative to the page instead".into());
    }
    let decoded = path.replace("%20", " ");
    let mut resolved = file.parent().unwrap().to_path_buf();
    for part in Path::new(&decoded).components() {
        match part {
            Component::ParentDir => {
                resolved.pop();
            }
            Component::Normal(p) => resolved.push(p),
            _ => {}
        }
    }
    if !resolved.starts_with(common::repo_root()) {
        return Some("points outside the repository".into());
    }
    if !resolved.exists() {
        return Some(format!(
            "{} does not exist",
            resolved
                .strip_prefix(common::repo_root())
                .unwrap()
                .display()
        ));
    }
    None
}

#[test]
fn every_relative_link_and_image_in_the_markdown_resolves_inside_the_repository() {
    let mut files = Vec::new();
    markdown_files(common::repo_root(), &mut files);
    for must in [
        "README.md",
        "docs/RESULTS.md",
        "docs/EXPERIMENTS.md",
        "data/README.md",
    ] {
        assert!(
            files.contains(&common::repo_root().join(must)),
            "{must} was not found among the markdown files"
        );
    }
    let mut broken = Vec::new();
    let mut checked = 0;
    for file in &files {
        let text = fs::read_to_string(file).unwrap();
        for target in targets(&text) {
            checked += 1;
            if let Some(why) = problem(file, &target) {
                let page = file.strip_prefix(common::repo_root()).unwrap().display();
                broken.push(format!("{page}: ({target}) {why}"));
            }
        }
    }
    assert!(
        checked > 20,
        "only {checked} links found: is the parser reading the files?"
    );
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn the_link_check_catches_missing_outside_and_absolute_targets() {
    let page = common::repo_root().join("docs/results/three-layer.md");
    assert_eq!(problem(&page, "../figures/three_layer_bn.png"), None);
    assert_eq!(
        problem(&page, "../RESULTS.md#results-the-report-re-run"),
        None
    );
    assert_eq!(problem(&page, "https://example.org/x.png"), None);
    assert_eq!(problem(&page, "#a-heading"), None);
    for bad in [
        "figures/three_layer_bn.png",
        "../../../elsewhere/notes.txt",
        "/etc/hostname",
    ] {
        assert!(problem(&page, bad).is_some(), "{bad} passed");
    }
    assert_eq!(
        targets("[a](x.md) ![b](y.png \"t\") <img src=\"z.png\"> `[c](code.md)`"),
        ["x.md", "y.png", "z.png"]
    );
}
