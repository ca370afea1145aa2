/// How to write a profile. `OutputOptions::default()` matches py-spy.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputOptions {
    /// Flamegraph title and speedscope file name, e.g. the command line.
    /// When empty, the profile's command line is used (or `pyspy-node
    /// profile` if that is empty too).
    pub title: String,
    /// Which clock the samples measure, for pprof's time value and period
    /// type. Default [`Clock::Cpu`].
    pub clock: Clock,
    /// Flamegraph: frames narrower than this many pixels (of 1200) are left
    /// out. Default 0.1, as py-spy.
    pub min_width: f64,
    /// Speedscope `exporter` field and pprof comment naming the tool.
    /// Default `pyspy-node@<this crate's version>`.
    pub exporter: String,
    /// Pprof label keys in snake_case (`thread_name`, `thread_id`,
    /// `thread_native_id`) rather than py-spy's (`thread name`, ...):
    /// Pyroscope takes string labels as series labels, whose names must be
    /// identifiers. Default false.
    pub snake_case_labels: bool,
}

impl Default for OutputOptions {
    fn default() -> Self {
        OutputOptions {
            title: String::new(),
            clock: Clock::Cpu,
            min_width: 0.1,
            exporter: concat!("pyspy-node@", env!("CARGO_PKG_VERSION")).to_owned(),
            snake_case_labels: false,
        }
    }
}

impl OutputOptions {
    /// The title to write: [`OutputOptions::title`], else the command line,
    /// else `pyspy-node profile`.
    pub(crate) fn title_for<'a>(&'a self, command_line: &'a str) -> &'a str {
        if !self.title.is_empty() {
            &self.title
        } else if !command_line.is_empty() {
            command_line
        } else {
            "pyspy-node profile"
        }
    }
}

/// What the time between samples measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Clock {
    /// CPU time: only threads that were running were kept (py-spy's default).
    #[default]
    Cpu,
    /// Wall time: idle threads were kept too (`--idle`).
    Wall,
}

impl Clock {
    /// The pprof sample/period type name: `cpu` or `wall`.
    pub fn pprof_name(self) -> &'static str {
        match self {
            Clock::Cpu => "cpu",
            Clock::Wall => "wall",
        }
    }
}
