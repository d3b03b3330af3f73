//! The harness every target runs through: replay the corpus, then a fixed number of
//! generated inputs (mutated corpus entries and the target's structured generator),
//! under a watchdog for hangs; a failing input is shrunk and saved as an artifact.
//!
//! proptest drives generation and shrinking; the RNG seed is fixed unless
//! `TOKENWARDEN_FUZZ_SEED` says otherwise, so a CI run is reproducible.

use std::cell::RefCell;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::test_runner::{Config, RngAlgorithm, TestError, TestRng, TestRunner};

pub use proptest::test_runner::TestCaseError;

/// What a target's check returns: `Err` is a broken property.
pub type Outcome = Result<(), TestCaseError>;

/// An input that still takes this long when timed again on its own fails the target.
/// Every parser here answers in microseconds; a second means a blow-up.
const SLOW_INPUT: Duration = Duration::from_secs(1);

/// An input still running after this long is a hang: the watchdog saves it and aborts
/// the process (a test cannot be interrupted otherwise).
const HANG: Duration = Duration::from_secs(30);

/// Bytes every target's mutator may insert, besides its own dictionary.
const COMMON_TOKENS: &[&[u8]] = &[
    b"\0",
    b"\xff",
    b"\xc3\xa9",
    b"\xe2\x80\xae",
    b"\xf0\x9f\x94\x91",
    b"\r\n",
    b"%",
    b"%00",
    b"%ff",
    b"\\",
    b"\"",
    b"'",
    b"18446744073709551616",
    b"-1",
];

/// A corpus entry or a seed the target made at run time.
#[derive(Debug, Clone)]
pub struct Seed {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// One fuzz target: its corpus, its extra seeds and its mutation dictionary.
#[derive(Debug)]
pub struct Target {
    name: &'static str,
    seeds: Vec<Seed>,
    dictionary: Vec<&'static [u8]>,
    default_cases: u32,
}

fn corpus_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(name)
}

fn artifact_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("artifacts")
        .join(name)
}

/// Generated cases per target: `TOKENWARDEN_FUZZ_CASES` when set, else the target's
/// default (chosen so the target runs in a few seconds in a debug build).
pub fn cases(default: u32) -> u32 {
    match std::env::var("TOKENWARDEN_FUZZ_CASES") {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("TOKENWARDEN_FUZZ_CASES must be a number, not {v:?}")),
        Err(_) => default,
    }
}

/// The RNG seed: `TOKENWARDEN_FUZZ_SEED` (a number, or `random`), else 0.
fn seed() -> u64 {
    match std::env::var("TOKENWARDEN_FUZZ_SEED").as_deref() {
        Err(_) => 0,
        Ok("random") => SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1),
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("TOKENWARDEN_FUZZ_SEED must be a number or `random`")),
    }
}

fn hash_of(data: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    data.hash(&mut h);
    h.finish()
}

/// Shows an input in a failure message: as text when it is UTF-8, else escaped bytes;
/// cut at 600 characters (the artifact file holds all of it).
pub fn preview(data: &[u8]) -> String {
    let shown = match std::str::from_utf8(data) {
        Ok(s) => format!("{s:?}"),
        Err(_) => format!("b\"{}\"", data.escape_ascii()),
    };
    if shown.chars().count() > 600 {
        format!(
            "{}... ({} bytes)",
            shown.chars().take(600).collect::<String>(),
            data.len()
        )
    } else {
        shown
    }
}

/// Saves an input under `artifacts/<target>/<kind>-<hash>` and returns the path.
fn save_artifact(target: &str, kind: &str, data: &[u8]) -> PathBuf {
    let dir = artifact_dir(target);
    let path = dir.join(format!("{kind}-{:016x}", hash_of(data)));
    if let Err(e) = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, data)) {
        eprintln!("could not save {}: {e}", path.display());
    }
    path
}

fn keep_hint(target: &str, path: &Path) -> String {
    format!(
        "saved as {}\nreplay it on every run: cp {} crates/fuzz/corpus/{target}/<what-it-is>",
        path.display(),
        path.display()
    )
}

/// One mutation of a corpus entry. Positions are [`Index`]es so that they fit any
/// length and shrink towards the start.
#[derive(Debug, Clone)]
enum Op {
    FlipBit(Index, u8),
    SetByte(Index, u8),
    Insert(Index, Vec<u8>),
    Delete(Index, usize),
    /// Repeats a slice in place (a parameter given twice, a nested bracket).
    Repeat(Index, usize, u8),
    /// Keeps the head of this input and the tail of another seed.
    Splice(Index, Index),
    Truncate(Index),
}

fn apply(mut data: Vec<u8>, ops: &[Op], other: &[u8]) -> Vec<u8> {
    for op in ops {
        let len = data.len();
        match op {
            Op::Insert(at, bytes) => {
                let at = if len == 0 { 0 } else { at.index(len + 1) };
                data.splice(at..at, bytes.iter().copied());
            }
            Op::Splice(here, there) => {
                let at = if len == 0 { 0 } else { here.index(len + 1) };
                let from = if other.is_empty() {
                    0
                } else {
                    there.index(other.len())
                };
                data.truncate(at);
                data.extend_from_slice(&other[from..]);
            }
            _ if len == 0 => {}
            Op::FlipBit(at, bit) => data[at.index(len)] ^= 1 << (bit % 8),
            Op::SetByte(at, b) => data[at.index(len)] = *b,
            Op::Delete(at, n) => {
                let at = at.index(len);
                let end = (at + n).min(len);
                data.drain(at..end);
            }
            Op::Repeat(at, n, times) => {
                let at = at.index(len);
                let end = (at + n).min(len);
                let chunk = data[at..end].to_vec();
                for _ in 0..*times {
                    data.splice(end..end, chunk.iter().copied());
                }
            }
            Op::Truncate(at) => data.truncate(at.index(len)),
        }
    }
    data
}

fn op(dictionary: Vec<&'static [u8]>) -> impl Strategy<Value = Op> {
    let insert = prop_oneof![
        3 => select(dictionary).prop_map(<[u8]>::to_vec),
        1 => proptest::collection::vec(any::<u8>(), 1..8),
    ];
    prop_oneof![
        1 => any::<(Index, u8)>().prop_map(|(i, b)| Op::FlipBit(i, b)),
        1 => any::<(Index, u8)>().prop_map(|(i, b)| Op::SetByte(i, b)),
        3 => (any::<Index>(), insert).prop_map(|(i, b)| Op::Insert(i, b)),
        1 => (any::<Index>(), 1usize..16).prop_map(|(i, n)| Op::Delete(i, n)),
        1 => (any::<Index>(), 1usize..24, 1u8..4).prop_map(|(i, n, t)| Op::Repeat(i, n, t)),
        1 => any::<(Index, Index)>().prop_map(|(a, b)| Op::Splice(a, b)),
        1 => any::<Index>().prop_map(Op::Truncate),
    ]
}

/// Tracks the input being checked, for the watchdog and the timing report.
struct Clock {
    current: Mutex<Option<(Instant, Vec<u8>)>>,
    done: AtomicBool,
}

impl Target {
    /// A target reading `corpus/<name>/`. The dictionary holds tokens that matter to
    /// this input format (`%2e`, `"expires_in":`, `[[`); the mutator inserts them.
    pub fn new(name: &'static str, dictionary: &[&'static [u8]]) -> Self {
        let dir = corpus_dir(name);
        let mut seeds: Vec<Seed> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| {
                let path = entry.unwrap().path();
                Seed {
                    name: format!(
                        "corpus/{name}/{}",
                        path.file_name().unwrap().to_string_lossy()
                    ),
                    bytes: std::fs::read(&path).unwrap(),
                }
            })
            .collect();
        seeds.sort_by(|a, b| a.name.cmp(&b.name));
        assert!(!seeds.is_empty(), "{} is empty", dir.display());
        let mut all = dictionary.to_vec();
        all.extend_from_slice(COMMON_TOKENS);
        Self {
            name,
            seeds,
            dictionary: all,
            default_cases: 2000,
        }
    }

    /// Adds a seed made at run time (fresh keys, the built-in catalog); replayed and
    /// mutated like a corpus file.
    pub fn seed(mut self, name: impl Into<String>, bytes: impl Into<Vec<u8>>) -> Self {
        self.seeds.push(Seed {
            name: name.into(),
            bytes: bytes.into(),
        });
        self
    }

    /// Generated cases when `TOKENWARDEN_FUZZ_CASES` is unset.
    pub fn default_cases(mut self, cases: u32) -> Self {
        self.default_cases = cases;
        self
    }

    /// Replays every seed, then checks `cases()` generated inputs: three in five are
    /// corpus entries with one to four mutations, two in five come from `structured`.
    /// Panics with the (shrunk) input and where it was saved when `check` fails or
    /// panics, or when an input is slow.
    pub fn run<S>(self, structured: S, check: impl Fn(&[u8]) -> Outcome)
    where
        S: Strategy<Value = Vec<u8>>,
        S::Tree: 'static,
    {
        let started = Instant::now();
        let clock = Arc::new(Clock {
            current: Mutex::new(None),
            done: AtomicBool::new(false),
        });
        let watchdog = {
            let clock = Arc::clone(&clock);
            let name = self.name;
            std::thread::spawn(move || {
                while !clock.done.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(100));
                    let current = clock.current.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some((since, input)) = current.as_ref()
                        && since.elapsed() > HANG
                    {
                        let path = save_artifact(name, "hang", input);
                        eprintln!(
                            "fuzz target `{name}` hangs on an input (over {HANG:?}): {}\n{}",
                            preview(input),
                            keep_hint(name, &path)
                        );
                        std::process::abort();
                    }
                }
            })
        };
        let slowest: RefCell<(Duration, Vec<u8>)> = RefCell::new((Duration::ZERO, Vec::new()));
        let timed = |input: &[u8]| -> Outcome {
            *clock.current.lock().unwrap_or_else(|e| e.into_inner()) =
                Some((Instant::now(), input.to_vec()));
            let t = Instant::now();
            let outcome = check(input);
            let took = t.elapsed();
            *clock.current.lock().unwrap_or_else(|e| e.into_inner()) = None;
            let mut slow = slowest.borrow_mut();
            if took > slow.0 {
                *slow = (took, input.to_vec());
            }
            outcome
        };

        for seed in &self.seeds {
            let outcome = catch_unwind(AssertUnwindSafe(|| timed(&seed.bytes)));
            let reason = match outcome {
                Ok(Ok(())) => continue,
                Ok(Err(e)) => e.to_string(),
                Err(panic) => panic_message(&*panic),
            };
            panic!(
                "fuzz target `{}`: {} fails: {reason}\ninput: {}",
                self.name,
                seed.name,
                preview(&seed.bytes)
            );
        }

        let cases = cases(self.default_cases);
        let seed = seed();
        let mut rng_seed = [0u8; 32];
        rng_seed[..8].copy_from_slice(&seed.to_le_bytes());
        rng_seed[8..16].copy_from_slice(&hash_of(self.name.as_bytes()).to_le_bytes());
        let config = Config {
            cases,
            failure_persistence: None,
            max_shrink_iters: 4096,
            ..Config::default()
        };
        let mut runner =
            TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &rng_seed));
        let seeds: Vec<Vec<u8>> = self.seeds.iter().map(|s| s.bytes.clone()).collect();
        let mutated = (
            select(seeds.clone()),
            select(seeds),
            proptest::collection::vec(op(self.dictionary.clone()), 1..5),
        )
            .prop_map(|(data, other, ops)| apply(data, &ops, &other));
        let strategy = prop_oneof![3 => mutated, 2 => structured];
        let result = runner.run(&strategy, |input| timed(&input));
        clock.done.store(true, Ordering::Relaxed);
        let _ = watchdog.join();
        match result {
            Ok(()) => {}
            Err(TestError::Fail(reason, input)) => {
                let path = save_artifact(self.name, "crash", &input);
                panic!(
                    "fuzz target `{}` failed (seed {seed}): {reason}\ninput: {}\n{}",
                    self.name,
                    preview(&input),
                    keep_hint(self.name, &path)
                );
            }
            Err(TestError::Abort(reason)) => {
                panic!("fuzz target `{}` aborted: {reason}", self.name)
            }
        }

        // The slowest input, timed again on its own: a real blow-up is slow every time,
        // a scheduling hiccup of a loaded machine is not.
        let (took, input) = slowest.into_inner();
        let again = (0..3)
            .map(|_| {
                let t = Instant::now();
                let _ = check(&input);
                t.elapsed()
            })
            .min()
            .unwrap_or(took);
        if again > SLOW_INPUT {
            let path = save_artifact(self.name, "slow", &input);
            panic!(
                "fuzz target `{}`: an input takes {again:?}: {}\n{}",
                self.name,
                preview(&input),
                keep_hint(self.name, &path)
            );
        }
        eprintln!(
            "fuzz target `{}`: {} seeds and {cases} generated inputs (seed {seed}) in {:?}; slowest input {took:?} ({again:?} alone)",
            self.name,
            self.seeds.len(),
            started.elapsed()
        );
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "panic".to_owned())
}

/// Arbitrary bytes, mostly short: the unstructured half of a structured generator.
pub fn arbitrary_bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..256)
}

/// Fails the case with `message` unless `condition` holds (`prop_assert!` without the
/// early return's type constraints).
pub fn ensure(condition: bool, message: impl FnOnce() -> String) -> Outcome {
    if condition {
        Ok(())
    } else {
        Err(TestCaseError::fail(message()))
    }
}
