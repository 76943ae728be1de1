//! The embedded store's faults, on the real binary (see `child`) with its data directory
//! on a small file system made by the test: a full disk answers `UNAVAILABLE` with a
//! `RetryInfo`, loses nothing and recovers by itself once space is freed; a file system
//! that turns read-only (as ext4 does on a disk error) makes the process exit with
//! status 74, health `NOT_SERVING` first.
//!
//! Mounting needs root, as CI runs: without it these tests fail saying so. Every mount is
//! undone when its guard drops (lazily if the test panicked, so a busy mount never stays).

use std::collections::HashSet;
use std::fs::File;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use herald::app::EXIT_STORE_FAILED;
use herald::grpc::pb;
use tokio::sync::Semaphore;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_types::StatusExt;

use crate::child::{Client, Herald, Settings, register_url};
use crate::support::{PATIENCE, Reply, Sink, eventually, publish_json, share_machine};

/// The small file system a full-disk test fills: room for the database and some WAL.
const TMPFS_SIZE: &str = "4m";
/// The ext4 image the read-only test mounts (about the smallest `mkfs.ext4` makes well).
const EXT4_IMAGE_BYTES: u64 = 16 << 20;
/// More than the full-disk test's file system holds.
const FILL_LIMIT: usize = 64 << 20;
/// Deliveries held at the sink (as many as there are workers) in the full-disk test, and
/// deliveries waiting for a worker meanwhile.
const HELD: usize = 3;
const WAITING: usize = 3;
/// The most publishes tried, on a full disk, before one must have been refused.
const PROBES: usize = 200;
/// How soon after its store failed the process must have exited.
const EXIT_WITHIN: Duration = Duration::from_secs(5);

/// Fails the test, saying why, unless it runs as root (mounting needs it).
fn require_root() {
    let uid = std::fs::metadata("/proc/self")
        .expect("/proc/self exists on Linux")
        .uid();
    assert_eq!(
        uid, 0,
        "the embedded store's fault tests mount small file systems and need root (CI runs as root); run them as root, e.g. `sudo -E cargo test --test integration faults`"
    );
}

/// Runs `program` with `args`; panics with its output unless it succeeds.
fn run(program: &str, args: &[&str]) {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A file system mounted on a fresh directory for one test, unmounted on drop.
struct Mount {
    /// Where it is mounted; removed after the unmount.
    dir: tempfile::TempDir,
    /// Holds the image file of a loop mount (the loop device goes with the unmount).
    _image: Option<tempfile::TempDir>,
}

impl Mount {
    /// A tmpfs of `size` (`mount -o size=`).
    fn tmpfs(size: &str) -> Self {
        require_root();
        let dir = tempfile::tempdir().unwrap();
        run(
            "mount",
            &[
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
                path_str(dir.path()),
            ],
        );
        Self { dir, _image: None }
    }

    /// A fresh ext4 image, loop-mounted with `errors=remount-ro`: on an error it turns
    /// read-only, as a disk's file system does.
    fn ext4() -> Self {
        require_root();
        let image_dir = tempfile::tempdir().unwrap();
        let image = image_dir.path().join("fs.img");
        File::create(&image)
            .unwrap()
            .set_len(EXT4_IMAGE_BYTES)
            .unwrap();
        run("mkfs.ext4", &["-q", "-F", path_str(&image)]);
        let dir = tempfile::tempdir().unwrap();
        run(
            "mount",
            &[
                "-o",
                "loop,errors=remount-ro",
                path_str(&image),
                path_str(dir.path()),
            ],
        );
        Self {
            dir,
            _image: Some(image_dir),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Reports an error on this ext4 file system through its sysfs trigger, as a failing
    /// disk would: with `errors=remount-ro` it turns read-only at once, files open for
    /// writing included (`mount -o remount,ro` refuses while a file is open for writing).
    fn fail_ext4(&self) {
        let device = self.source();
        let name = device
            .strip_prefix("/dev/")
            .unwrap_or_else(|| panic!("a loop device, not {device}"));
        std::fs::write(
            format!("/sys/fs/ext4/{name}/trigger_fs_error"),
            "herald fault test\n",
        )
        .expect("trigger an ext4 error");
        let options = self.options();
        assert!(
            options.split(',').any(|o| o == "ro" || o == "emergency_ro"),
            "the file system turned read-only: {options}"
        );
    }

    /// The line of /proc/self/mountinfo describing this mount, split at its ` - `.
    fn mountinfo(&self) -> (Vec<String>, Vec<String>) {
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        // The last line: a mount over another on the same directory hides it.
        let line = mounts
            .lines()
            .rfind(|line| line.split(' ').nth(4) == Some(path_str(self.path())))
            .unwrap_or_else(|| panic!("{} is mounted", self.path().display()));
        let (mount, fs) = line.split_once(" - ").expect("mountinfo has a separator");
        let words = |s: &str| s.split(' ').map(str::to_owned).collect();
        (words(mount), words(fs))
    }

    /// The mounted device.
    fn source(&self) -> String {
        self.mountinfo().1[1].clone()
    }

    /// The mount's and the file system's options, comma-separated.
    fn options(&self) -> String {
        let (mount, fs) = self.mountinfo();
        format!("{},{}", mount[5], fs[2])
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let path = path_str(self.path()).to_owned();
        // A panicking test may leave something open on it: detach it now, free it later.
        let lazy = std::thread::panicking();
        let args: &[&str] = if lazy { &["-l", &path] } else { &[&path] };
        match Command::new("umount").args(args).status() {
            Ok(status) if status.success() => {}
            outcome => {
                let _ = Command::new("umount").args(["-l", &path]).status();
                assert!(
                    lazy,
                    "umount {path} failed ({outcome:?}); it was detached lazily"
                );
            }
        }
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

/// Fills the file system holding `path` with one file until it has no byte left (the
/// last write stops at the very end, then fails with `ENOSPC`).
fn fill(path: &Path) {
    const CHUNK: usize = 64 << 10;
    let mut file = File::create(path).expect("create the filler");
    let chunk = vec![0xa5u8; CHUNK];
    for _ in 0..FILL_LIMIT / CHUNK {
        match file.write_all(&chunk) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::StorageFull => return,
            Err(e) => panic!("filling {}: {e}", path.display()),
        }
    }
    panic!(
        "{} took {FILL_LIMIT} bytes without filling up",
        path.display()
    );
}

/// A publish of about 8 KiB, so that storing it needs new pages.
fn sizeable(n: usize) -> pb::PublishRequest {
    publish_json(
        "order.created",
        serde_json::json!({"n": n, "padding": "x".repeat(8 << 10)}),
    )
}

/// Publishes `n` messages; returns their ids.
async fn publish(client: &mut Client, from: usize, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in from..from + n {
        let resp = client.publish(sizeable(i)).await.expect("publish");
        ids.push(resp.into_inner().message_id);
    }
    ids
}

async fn disk_check(client: &mut Client) -> pb::HealthCheck {
    let report = client
        .get_health(pb::GetHealthRequest {})
        .await
        .expect("health")
        .into_inner();
    report
        .checks
        .into_iter()
        .find(|c| c.name == "disk")
        .expect("the report has a disk check")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_publishes_until_space_is_freed() {
    let _machine = share_machine().await;
    let fs = Mount::tmpfs(TMPFS_SIZE);
    let data = fs.path().join("herald-data");
    let filler = fs.path().join("filler");
    let mut sink = Sink::start().await;
    // Every worker is held at the sink, the other deliveries wait for one: nothing is
    // written while the disk fills, so the full disk starts with the first refusal.
    let gate = Arc::new(Semaphore::new(0));
    sink.queue(
        "/hook",
        (0..HELD).map(|_| Reply::status(200).held_by(gate.clone())),
    );
    // A new endpoint that has not answered is slow: it may hold every worker only when
    // slow endpoints may hold them all.
    let settings = Settings::embedded(&data)
        .set("WEBHOOK_MAX_WORKERS", &HELD.to_string())
        .set("WEBHOOK_SLOW_WORKER_SHARE", "100");
    let (mut herald, mut client) = Herald::start(&settings).await;
    register_url(&mut client, sink.url("/hook")).await;
    let mut acked = publish(&mut client, 0, HELD + WAITING).await;
    let mut missing: HashSet<String> = acked.iter().cloned().collect();
    for received in sink.take(HELD).await {
        missing.remove(received.header("webhook-id"));
    }

    fill(&filler);
    // Whatever still fits in pages SQLite already has may commit; then it must refuse.
    let refused = 'probe: {
        for n in 0..PROBES {
            match client.publish(sizeable(100 + n)).await {
                Ok(resp) => acked.push(resp.into_inner().message_id),
                Err(status) => break 'probe status,
            }
        }
        panic!("{PROBES} publishes were all accepted on a full disk");
    };
    println!(
        "full disk: {} publishes accepted after filling, then: {}",
        acked.len() - HELD - WAITING,
        refused.message()
    );
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    let message = refused.message();
    assert!(
        message.contains("disk is full") && message.contains(path_str(&data)),
        "the refusal says the disk of {} is full: {message}",
        data.display()
    );
    assert!(
        refused.get_details_retry_info().is_some(),
        "the refusal says when to retry: {refused:?}"
    );
    // The held attempts end: their outcomes cannot be written, nor the waiting
    // deliveries claimed; the writer goes on, the scheduler pauses and tries again.
    gate.add_permits(HELD);
    herald.wait_for_message("cannot claim due deliveries").await;
    let again = client.publish(sizeable(1000)).await.unwrap_err();
    assert_eq!(again.code(), Code::Unavailable, "{again:?}");
    let disk = disk_check(&mut client).await;
    assert!(
        !disk.ok && disk.detail.contains("is full"),
        "health reports the full disk: {disk:?}"
    );

    std::fs::remove_file(&filler).expect("free the space");
    let recovered = eventually("a publish is accepted again", || {
        let mut client = client.clone();
        async move {
            client
                .publish(sizeable(2000))
                .await
                .ok()
                .map(|r| r.into_inner().message_id)
        }
    })
    .await;
    acked.push(recovered);
    assert!(disk_check(&mut client).await.ok, "health recovers");

    // Every acknowledged message is delivered, without a restart.
    missing.extend(acked[HELD + WAITING..].iter().cloned());
    while !missing.is_empty() {
        missing.remove(sink.next().await.header("webhook-id"));
    }
    herald
        .wait_for_message("claiming due deliveries again")
        .await;
    herald.read_log();
    let episodes = herald
        .stderr()
        .lines()
        .filter(|l| l.contains(r#""message":"the embedded store's disk is full"#))
        .count();
    assert_eq!(
        episodes,
        1,
        "the episode is logged once:\n{}",
        herald.stderr()
    );
    assert!(
        herald
            .logged_message("the embedded store writes again")
            .is_some()
    );
    herald.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_system_turned_read_only_stops_the_process() {
    let _machine = share_machine().await;
    let fs = Mount::ext4();
    let data: PathBuf = fs.path().join("herald-data");
    let sink = Sink::start().await;
    let (mut herald, mut client) = Herald::start(&Settings::embedded(&data)).await;
    register_url(&mut client, sink.url("/hook")).await;
    publish(&mut client, 0, 1).await;
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", herald.grpc_addr()))
        .unwrap()
        .connect()
        .await
        .expect("a second connection");
    let mut health = HealthClient::new(channel)
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("a health watch opens")
        .into_inner();

    fs.fail_ext4();
    let failed_at = Instant::now();
    let refused = client.publish(sizeable(1)).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    let not_serving = tokio::time::timeout(PATIENCE, async {
        while let Ok(Some(update)) = health.message().await {
            if update.status == ServingStatus::NotServing as i32 {
                return true;
            }
        }
        false
    })
    .await
    .expect("the health watch ends or turns NOT_SERVING in time");
    assert!(not_serving, "health turned NOT_SERVING before the exit");

    let status = herald.wait_exit().await;
    let took = failed_at.elapsed();
    println!("read-only file system: exited {took:?} after the failure with {status}");
    assert_eq!(
        status.code(),
        Some(i32::from(EXIT_STORE_FAILED)),
        "{status}; stderr:\n{}",
        herald.stderr()
    );
    assert!(
        took < EXIT_WITHIN,
        "exited {took:?} after the file system failed"
    );
    let cause = format!("cannot write its database in {}", data.display());
    assert!(
        herald.logged("the store failed and cannot go on") && herald.logged(&cause),
        "stderr names the cause ({cause}):\n{}",
        herald.stderr()
    );
}
