//! Speedscope JSON output.

use serde_json::Value;

use super::*;

fn doc(p: &Profile) -> Value {
    serde_json::from_slice(&encode(p, Format::Speedscope)).expect("valid JSON")
}

/// Frame names of each sample of profile `i`, and the weights.
fn samples(doc: &Value, i: usize) -> (Vec<Vec<String>>, Vec<f64>) {
    let frames = doc["shared"]["frames"].as_array().unwrap();
    let profile = &doc["profiles"][i];
    let stacks = profile["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            s.as_array()
                .unwrap()
                .iter()
                .map(|f| {
                    let f = f.as_u64().unwrap() as usize;
                    assert!(f < frames.len(), "frame index {f} out of range");
                    frames[f]["name"].as_str().unwrap().to_owned()
                })
                .collect()
        })
        .collect();
    let weights = profile["weights"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_f64().unwrap())
        .collect();
    (stacks, weights)
}

#[test]
fn top_level_follows_the_schema() {
    let doc = doc(&two_threads());
    assert_eq!(
        doc["$schema"],
        "https://www.speedscope.app/file-format-schema.json"
    );
    assert_eq!(
        doc["exporter"],
        concat!("pyspy-node@", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(doc["name"], "python app.py");
    assert_eq!(doc["activeProfileIndex"], 0);
    let frames = doc["shared"]["frames"].as_array().unwrap();
    assert_eq!(frames.len(), 5);
    assert_eq!(
        frames[HOT as usize],
        serde_json::json!({"name": "hot", "file": "/srv/app/hot.py", "line": 3, "col": null})
    );
}

#[test]
fn one_profile_per_thread_with_weights_adding_up() {
    let doc = doc(&two_threads());
    let profiles = doc["profiles"].as_array().unwrap();
    let names: Vec<&str> = profiles
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["Thread 101 \"MainThread\"", "Thread 102 \"worker\""]
    );
    for (i, (profile, samples)) in profiles.iter().zip([8.0, 4.0]).enumerate() {
        assert_eq!(profile["type"], "sampled");
        assert_eq!(profile["unit"], "seconds");
        assert_eq!(profile["startValue"], 0);
        let end = profile["endValue"].as_f64().unwrap();
        assert!((end - samples / 100.0).abs() < 1e-12, "{end}");
        let (stacks, weights) = self::samples(&doc, i);
        assert_eq!(stacks.len(), weights.len());
        assert!((weights.iter().sum::<f64>() - end).abs() < 1e-12);
    }
}

#[test]
fn samples_keep_time_order_and_counts() {
    let doc = doc(&two_threads());
    let (stacks, weights) = samples(&doc, 0);
    let leaves: Vec<&str> = stacks.iter().map(|s| s.last().unwrap().as_str()).collect();
    assert_eq!(leaves, ["hot", "cold", "hot", "cold"]);
    assert_eq!(stacks[0], ["<module>", "main", "hot"]);
    let counts: Vec<f64> = weights.iter().map(|w| (w * 100.0).round()).collect();
    assert_eq!(counts, [3.0, 1.0, 3.0, 1.0]);
}

#[test]
fn without_a_timeline_each_stack_is_one_sample() {
    let mut p = two_threads();
    p.timeline.clear();
    let doc = doc(&p);
    let (stacks, weights) = samples(&doc, 0);
    assert_eq!(stacks.len(), 2);
    let total: f64 = weights.iter().sum();
    assert!((total - 0.08).abs() < 1e-12);
    assert_eq!(weights, [0.06, 0.02]);
}

#[test]
fn several_processes_prefix_names_and_unknown_names_are_left_out() {
    let mut p = two_threads();
    p.threads[1].pid = 43;
    p.threads[1].name = None;
    p.threads[1].os_thread_id = None;
    let doc = doc(&p);
    let names: Vec<&str> = doc["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "Process 42 Thread 101 \"MainThread\"",
            &format!("Process 43 Thread {}", 0x7f00_0000_2000u64)
        ]
    );
}

#[test]
fn synthetic_frames_and_line_zero_have_null_file_or_line() {
    let mut p = with_thread_roots();
    p.frames[MAIN as usize].line = 0;
    let doc = doc(&p);
    let frames = doc["shared"]["frames"].as_array().unwrap();
    assert_eq!(
        frames[MAIN as usize],
        serde_json::json!({"name": "main", "file": "/srv/app/app.py", "line": null, "col": null})
    );
    assert_eq!(
        frames[5],
        serde_json::json!({"name": "thread (101): MainThread", "file": null, "line": null, "col": null})
    );
    let (stacks, _) = samples(&doc, 0);
    assert_eq!(stacks[0][0], "thread (101): MainThread");
}

#[test]
fn every_frame_has_name_file_line_and_col() {
    let doc = doc(&with_thread_roots());
    for f in doc["shared"]["frames"].as_array().unwrap() {
        let keys: Vec<&str> = f.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        assert_eq!(keys.len(), 4, "{f}");
        for k in ["name", "file", "line", "col"] {
            assert!(keys.contains(&k), "{k} missing in {f}");
        }
    }
}
