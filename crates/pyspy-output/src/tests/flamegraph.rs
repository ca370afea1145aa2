//! Flamegraph SVG output.

use super::*;

/// The SVG as an XML tree (inferno writes a DOCTYPE, so DTDs are allowed).
fn xml(svg: &str) -> roxmltree::Document<'_> {
    let options = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    roxmltree::Document::parse_with_options(svg, options).expect("the SVG is XML")
}

/// (title text, rect y) of every frame box.
fn frames(svg: &str) -> Vec<(String, f64)> {
    let doc = xml(svg);
    doc.descendants()
        .filter(|n| n.has_tag_name("g"))
        .filter_map(|g| {
            let title = g
                .children()
                .find(|c| c.has_tag_name("title"))?
                .text()?
                .to_owned();
            let rect = g.children().find(|c| c.has_tag_name("rect"))?;
            Some((title, rect.attribute("y")?.parse().ok()?))
        })
        .collect()
}

/// Samples and percent out of `hot (hot.py:3) (6 samples, 50.00%)`.
fn share(title: &str, label: &str) -> Option<(u64, f64)> {
    let rest = title
        .strip_prefix(label)?
        .strip_prefix(" (")?
        .strip_suffix("%)")?;
    let (samples, pct) = rest.split_once(" samples, ")?;
    Some((samples.replace(',', "").parse().ok()?, pct.parse().ok()?))
}

#[test]
fn titles_name_the_hot_function_with_its_share() {
    let svg = encode_str(&two_threads(), Format::Flamegraph);
    let frames = frames(&svg);
    let hot: Vec<(u64, f64)> = frames
        .iter()
        .filter_map(|(t, _)| share(t, "hot (hot.py:3)"))
        .collect();
    let cold: Vec<(u64, f64)> = frames
        .iter()
        .filter_map(|(t, _)| share(t, "cold (cold.py:7)"))
        .collect();
    assert_eq!(hot.len(), 2, "{frames:?}");
    assert_eq!(hot.iter().map(|h| h.0).sum::<u64>(), 9);
    assert!((hot.iter().map(|h| h.1).sum::<f64>() - 75.0).abs() < 0.01);
    assert_eq!(cold.iter().map(|c| c.0).sum::<u64>(), 3);
    assert!((cold.iter().map(|c| c.1).sum::<f64>() - 25.0).abs() < 0.01);
}

#[test]
fn icicle_with_root_at_top() {
    let frames = frames(&encode_str(&two_threads(), Format::Flamegraph));
    let y = |label: &str| {
        frames
            .iter()
            .find(|(t, _)| t.starts_with(label))
            .map(|f| f.1)
            .unwrap()
    };
    assert!(y("all (12 samples") < y("<module> (app.py:10)"));
    assert!(y("<module> (app.py:10)") < y("main (app.py:5)"));
    assert!(y("main (app.py:5)") < y("hot (hot.py:3)"));
}

#[test]
fn title_comes_from_options_or_the_command_line_and_is_escaped() {
    let svg = encode_str(&two_threads(), Format::Flamegraph);
    let doc = xml(&svg);
    let title = |doc: &roxmltree::Document| {
        doc.descendants()
            .find(|n| n.attribute("id") == Some("title"))
            .and_then(|n| n.text())
            .map(str::to_owned)
    };
    assert_eq!(title(&doc).as_deref(), Some("python app.py"));

    let options = OutputOptions {
        title: "py-spy record -- python -c \"a<b & c\"".into(),
        ..Default::default()
    };
    let svg =
        String::from_utf8(encode_to_vec(&two_threads(), Format::Flamegraph, &options).unwrap())
            .unwrap();
    let doc = xml(&svg);
    assert_eq!(title(&doc).as_deref(), Some(options.title.as_str()));
}

#[test]
fn markup_in_names_stays_text() {
    let mut p = two_threads();
    p.frames[HOT as usize].name = "<lambda> & \"friends\"".into();
    let frames = frames(&encode_str(&p, Format::Flamegraph));
    assert!(
        frames
            .iter()
            .any(|(t, _)| t.starts_with("<lambda> & \"friends\" (hot.py:3) (")),
        "{frames:?}"
    );
}

#[test]
fn synthetic_thread_roots_are_top_frames() {
    let frames = frames(&encode_str(&with_thread_roots(), Format::Flamegraph));
    let (main, _) = frames
        .iter()
        .find(|(t, _)| t.starts_with("thread (101): MainThread ("))
        .unwrap();
    assert_eq!(share(main, "thread (101): MainThread"), Some((8, 66.67)));
}

#[test]
fn pruning_before_inferno_changes_nothing() {
    use crate::folded::Folded;
    use crate::format::flamegraph::draw;
    let big = super::perf::big(3000, true);
    // (profile, min_width, whether some lines merge)
    for (p, min_width, shrinks) in [
        (&big, 0.1, true),
        (&big, 2.0, true),
        (&two_threads(), 30.0, false),
    ] {
        let options = OutputOptions {
            min_width,
            ..Default::default()
        };
        let mut folded = Folded::new(p);
        folded.prune(min_width);
        assert_eq!(
            folded.len() < Folded::new(p).len(),
            shrinks,
            "min_width {min_width}"
        );
        let mut unpruned = Vec::new();
        draw(&Folded::new(p), p, &options, &mut unpruned).unwrap();
        let pruned = encode_to_vec(p, Format::Flamegraph, &options).unwrap();
        assert!(
            pruned == unpruned,
            "min_width {min_width}: the drawings differ"
        );
    }
}
