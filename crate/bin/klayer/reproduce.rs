//! `klayer reproduce SECTION|all`: re-runs sections of the report at full size and regenerates
//! their parts of `docs/RESULTS.md` and their figures (PNG, rendered by headless Chromium from
//! the same plotly figures the notebooks show).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use clap::Args;
use klayer::experiments::sections::{Figure, Section, SECTIONS};
use klayer::experiments::Scale;
use klayer::output::{write_atomic, OutputPath};
use klayer::{Error, Result};

use crate::Outcome;

/// Flags of `klayer reproduce`.
#[derive(Debug, Args)]
pub struct ReproduceArgs {
    /// A section id (gradcheck, three-layer, nine-layer, lambda, init, bn-after, bn-stats, tta,
    /// adam, wide, fashion) or `all`.
    section: String,
    /// Where RESULTS.md, results/ and figures/ go.
    #[arg(long, default_value = "docs")]
    out: PathBuf,
    /// Quick mode (small data, one seed) to try the pipeline; numbers are not comparable.
    #[arg(long)]
    quick: bool,
    /// Skip rendering PNG figures (the markdown then references missing images).
    #[arg(long)]
    no_png: bool,
    /// plotly.js for the PNG figures; `scripts/lab.sh --install-only` puts it at the default
    /// path (from the plotly package of the project's venv).
    #[arg(long, value_name = "FILE", default_value = PLOTLY_JS)]
    plotly_js: PathBuf,
}

/// Where `scripts/lab.sh` puts plotly.js (relative to the repository).
const PLOTLY_JS: &str = ".venv/share/klayer/plotly.min.js";

/// The flags of every headless Chromium the project starts (shared with
/// `scripts/browser_test.py`): one per line, `#` starts a comment.
const CHROMIUM_FLAGS: &str = include_str!("../../../scripts/chromium-flags.txt");

/// A section's markdown links its figures relative to the docs folder (`figures/NAME.png`,
/// as in RESULTS.md); its own page in `results/` links them one folder up.
const FIGURE_LINK: &str = "](figures/";
const FIGURE_LINK_FROM_RESULTS: &str = "](../figures/";

/// A checked `reproduce`: the sections to run, the renderer, and output places that were
/// found writable.
pub struct ReproducePlan {
    chosen: Vec<&'static Section>,
    renderer: Option<Renderer>,
    scale: Scale,
    out: PathBuf,
}

/// Checks the section, the renderer and that every output place can be written (creating
/// `OUT/results` and `OUT/figures`), before any data is loaded or anything computed.
pub fn plan(args: ReproduceArgs) -> Result<ReproducePlan> {
    let chosen: Vec<&'static Section> = if args.section == "all" {
        SECTIONS.iter().collect()
    } else {
        let s = SECTIONS
            .iter()
            .find(|s| s.id == args.section)
            .ok_or_else(|| {
                let ids: Vec<_> = SECTIONS.iter().map(|s| s.id).collect();
                Error::config(
                    "section",
                    format!(
                        "unknown section {:?}; choose one of {} or all",
                        args.section,
                        ids.join(", ")
                    ),
                )
            })?;
        vec![s]
    };
    let results = args.out.join("results");
    let figures = args.out.join("figures");
    for dir in [&results, &figures] {
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    OutputPath::check(args.out.join("RESULTS.md"))?;
    for s in &chosen {
        OutputPath::check(results.join(format!("{}.md", s.id)))?;
    }
    // Figure names are known only after a section ran: check that the directory takes files.
    OutputPath::check(figures.join("figure.png"))?;
    let renderer = if args.no_png {
        None
    } else {
        Some(Renderer::new(&args.plotly_js)?)
    };
    let scale = if args.quick {
        Scale::quick()
    } else {
        Scale::full()
    };
    Ok(ReproducePlan {
        chosen,
        renderer,
        scale,
        out: args.out,
    })
}

/// Runs the command.
pub fn run(p: &ReproducePlan) -> Result<Outcome> {
    let results = p.out.join("results");
    let figures = p.out.join("figures");
    // Each data set is loaded once, when the first section that runs on it comes.
    let mut loaded = Vec::new();
    for section in &p.chosen {
        eprintln!("== {} ({})", section.title, section.id);
        let scale = p.scale.clone().on(section.data);
        let i = match loaded.iter().position(|(s, _)| *s == section.data) {
            Some(i) => i,
            None => {
                loaded.push((section.data, scale.load()?));
                loaded.len() - 1
            }
        };
        let data = &loaded[i].1;
        let started = Instant::now();
        let out = section.run(data, &scale)?;
        let secs = started.elapsed().as_secs_f64();
        for f in &out.figures {
            write_figure(f, &figures, p.renderer.as_ref())?;
        }
        let text = format!(
            "{}_Wall time of this section here: {} ({}), `klayer reproduce {}`._\n\n",
            out.markdown.replace(FIGURE_LINK, FIGURE_LINK_FROM_RESULTS),
            duration(secs),
            machine(),
            section.id
        );
        write_atomic(&results.join(format!("{}.md", section.id)), text.as_bytes())?;
        eprintln!("== {} done in {}", section.id, duration(secs));
        assemble(&p.out)?;
    }
    eprintln!("wrote {}", p.out.join("RESULTS.md").display());
    Ok(Outcome::Done)
}

pub(crate) fn duration(secs: f64) -> String {
    // Whole seconds first, so that 119.6 s is "2 min 0 s", not "1 min 60 s".
    let secs = secs.round();
    if secs < 60.0 {
        format!("{secs:.0} s")
    } else {
        format!("{} min {:.0} s", (secs / 60.0).floor(), secs % 60.0)
    }
}

fn machine() -> String {
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cpu}, {} threads", rayon::current_num_threads())
}

/// Rebuilds RESULTS.md from the section fragments present.
fn assemble(out: &Path) -> Result<()> {
    let mut md = String::from(
        "# Results: the report re-run\n\n\
         Every experiment of the report *k-layer classification network for CIFAR-10 with Batch \
         normalization* (DD2424 assignment 2 report; the settings of each run are described in \
         [EXPERIMENTS.md](EXPERIMENTS.md)) re-run with \
         klayer at full size on CIFAR-10, then the 3- and 9-layer nets on a second data set, \
         Fashion-MNIST: 5 seeds for the default 3- and 9-layer runs, 3 seeds for \
         everything else. Numbers are test accuracy in % unless said otherwise, as mean ± sample \
         standard deviation over seeds with the minimum and maximum. Each section is regenerated by \
         `klayer reproduce SECTION` (`klayer reproduce all` for everything); the figures are the \
         plotly figures the notebooks show, rendered to PNG by headless Chromium. Wall times are of \
         the run that produced the page; when other jobs shared the machine they are longer than a \
         quiet run (`klayer bench` measures speed).\n\n",
    );
    for s in SECTIONS {
        let path = out.join("results").join(format!("{}.md", s.id));
        match fs::read_to_string(&path) {
            Ok(text) => md += &text.replace(FIGURE_LINK_FROM_RESULTS, FIGURE_LINK),
            Err(_) => {
                md += &format!(
                    "## {}\n\n_Not run yet: `klayer reproduce {}`._\n\n",
                    s.title, s.id
                )
            }
        }
    }
    write_atomic(&out.join("RESULTS.md"), md.as_bytes())
}

/// Headless Chromium plus plotly.js, for turning figures into PNGs offline.
struct Renderer {
    chromium: PathBuf,
    plotly_js: String,
}

impl Renderer {
    /// Chromium at `$CHROMIUM` (else `/usr/bin/chromium`) and plotly.js from `plotly_js`.
    fn new(plotly_js: &Path) -> Result<Self> {
        let chromium = std::env::var_os("CHROMIUM")
            .map(PathBuf::from)
            .unwrap_or_else(|| "/usr/bin/chromium".into());
        if !chromium.exists() {
            return Err(Error::config("chromium", format!("{} not found: install Debian's chromium (apt-get install chromium), set CHROMIUM, or pass --no-png", chromium.display())));
        }
        if !plotly_js.is_file() {
            return Err(Error::config(
                "plotly-js",
                format!(
                    "{} not found: run scripts/lab.sh --install-only (it puts plotly.js there), \
                     pass --plotly-js FILE, or pass --no-png",
                    plotly_js.display()
                ),
            ));
        }
        let plotly_js = fs::read_to_string(plotly_js).map_err(|e| Error::io(plotly_js, e))?;
        Ok(Renderer {
            chromium,
            plotly_js,
        })
    }

    fn render(&self, figure: &Figure, png: &Path) -> Result<()> {
        let (w, h) = (1200, 460);
        let html = klayer::plot::to_standalone_html(&figure.plot, &self.plotly_js, w, h);
        let dir = tempfile::tempdir().map_err(|e| Error::io(std::env::temp_dir(), e))?;
        let page = dir.path().join("figure.html");
        fs::write(&page, html).map_err(|e| Error::io(&page, e))?;
        let shot = dir.path().join("figure.png");
        let status = Command::new(&self.chromium)
            .args(
                CHROMIUM_FLAGS
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#')),
            )
            .args(["--hide-scrollbars", "--virtual-time-budget=10000"])
            .arg(format!(
                "--user-data-dir={}",
                dir.path().join("profile").display()
            ))
            .arg(format!("--window-size={w},{h}"))
            .arg(format!("--screenshot={}", shot.display()))
            .arg(format!("file://{}", page.display()))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .map_err(|e| Error::io(&self.chromium, e))?;
        let bytes = fs::read(&shot).ok().filter(|b| b.len() > 1000);
        match (status.success(), bytes) {
            (true, Some(b)) => write_atomic(png, &b),
            _ => Err(Error::config(
                "chromium",
                format!("headless Chromium did not render {}", png.display()),
            )),
        }
    }
}

fn write_figure(f: &Figure, dir: &Path, renderer: Option<&Renderer>) -> Result<()> {
    if let Some(r) = renderer {
        r.render(f, &dir.join(format!("{}.png", f.name)))?;
    }
    Ok(())
}
