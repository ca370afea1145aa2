//! `record --asyncio`: a sample's frames rebuilt along the await chain.
//! Root first: the loop's frames, then for each task from the root task
//! down to the running one a `<task NAME>` frame and that task's frames.

use std::ops::Range;

use pyspy_asyncio::{TaskSample, ThreadChain};
use pyspy_cpython::RawFrame;
use pyspy_output::{FrameKind, FrameLabel};

use crate::aggregate::Aggregator;
use crate::process_loop::Labeler;
use crate::record::RecordConfig;
use crate::{Error, Session};

/// The frame label of a task: `<task NAME>`.
pub fn task_label(name: &str) -> FrameLabel {
    FrameLabel {
        name: format!("<task {name}>"),
        filename: String::new(),
        short_filename: String::new(),
        line: 0,
        first_line: 0,
        kind: FrameKind::Task,
    }
}

/// Pushes (root first) thread `frames` rebuilt along `chain`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn push_chain(
    key: &mut Vec<u32>,
    labeler: &mut Labeler,
    total: &mut Aggregator,
    session: &mut Session,
    config: &RecordConfig,
    tasks: &TaskSample,
    chain: &ThreadChain,
    frames: &[RawFrame],
) -> Result<(), Error> {
    let (running, loop_frames) = frames.split_at(chain.split.min(frames.len()));
    push_frames(key, labeler, total, session, config, loop_frames)?;
    push_links(
        key,
        labeler,
        total,
        session,
        config,
        tasks,
        chain.links.clone(),
        running,
    )
}

/// Pushes (root first) the tasks of `links` (innermost first), each as its
/// `<task NAME>` frame and its frames; the innermost task's frames are
/// `first` when its link has none of its own (the running task).
#[allow(clippy::too_many_arguments)]
pub(crate) fn push_links(
    key: &mut Vec<u32>,
    labeler: &mut Labeler,
    total: &mut Aggregator,
    session: &mut Session,
    config: &RecordConfig,
    tasks: &TaskSample,
    links: Range<usize>,
    first: &[RawFrame],
) -> Result<(), Error> {
    let start = links.start;
    for i in links.rev() {
        let link = &tasks.links[i];
        let name = link.name as usize;
        if labeler.tasks.len() <= name {
            labeler.tasks.resize(name + 1, None);
        }
        let id = match labeler.tasks[name] {
            Some(id) => id,
            None => {
                let id = total.frame_id(&task_label(session.task_name(link.name)));
                labeler.tasks[name] = Some(id);
                id
            }
        };
        key.push(id);
        let own = &tasks.frames[link.frames.clone()];
        let frames = if i == start && own.is_empty() {
            first
        } else {
            own
        };
        push_frames(key, labeler, total, session, config, frames)?;
    }
    Ok(())
}

/// Pushes `frames` (innermost first) root first.
fn push_frames(
    key: &mut Vec<u32>,
    labeler: &mut Labeler,
    total: &mut Aggregator,
    session: &mut Session,
    config: &RecordConfig,
    frames: &[RawFrame],
) -> Result<(), Error> {
    for f in frames.iter().rev() {
        key.push(labeler.frame_id(total, session, f.code, f.line, config)?);
    }
    Ok(())
}
