//! The host's sections: system figures, Docker containers, tmux sessions.

use std::fmt::Write as _;

use super::text::{duration, inline_code, push_capped_list, timestamp};
use super::{MAX_LIST_ITEMS, open};
use crate::docker::DockerSection;
use crate::snapshot::{
    CollectorStatus, disk_line, load_line, memory_line, plural, session_count, swap_line,
};
use crate::system::{Load, SystemSection};
use crate::tmux::{TmuxSection, TmuxSession};

pub(super) fn render_system(out: &mut String, system: &SystemSection) {
    if !open(out, "System", system.status, system.reason.as_deref()) {
        return;
    }
    // In an Error section, failed parts read as zero: show only what was collected.
    let ok = system.status == CollectorStatus::Ok;
    let mut items = Vec::new();
    if ok || system.memory.total_mb > 0 {
        items.push(memory_line(&system.memory));
        items.push(swap_line(&system.swap));
    }
    items.extend(system.disks.iter().map(disk_line));
    if ok || system.load != Load::default() {
        let cpus = if system.cpus > 0 {
            format!(" on {}", plural(system.cpus as usize, "CPU", "CPUs"))
        } else {
            String::new()
        };
        items.push(format!("{} (1, 5, 15 min){cpus}", load_line(&system.load)));
    }
    if system.uptime_seconds > 0 {
        items.push(format!("Uptime: {}", duration(system.uptime_seconds)));
    }
    if items.is_empty() && system.top_processes.is_empty() {
        out.push_str("No figures were collected.\n");
        return;
    }
    push_capped_list(out, &items, MAX_LIST_ITEMS);
    if !system.top_processes.is_empty() {
        let _ = writeln!(out, "\nLargest processes by resident memory:\n");
        let items: Vec<String> = system
            .top_processes
            .iter()
            .map(|p| {
                format!(
                    "{} MB {} (pid {}, up {})",
                    p.rss_mb,
                    inline_code(&crate::files::cap_chars(&p.command, 100)),
                    p.pid,
                    duration(p.age_seconds)
                )
            })
            .collect();
        push_capped_list(out, &items, MAX_LIST_ITEMS);
    }
}

pub(super) fn render_docker(out: &mut String, docker: &DockerSection) {
    if !open(out, "Docker", docker.status, docker.reason.as_deref()) {
        return;
    }
    if docker.containers.is_empty() {
        out.push_str("No containers.\n");
        return;
    }
    let _ = writeln!(out, "{}:\n", docker.summary());
    let items: Vec<String> = docker
        .containers
        .iter()
        .map(|c| {
            let mut item = format!("{} ({}): {}", c.name, inline_code(&c.image), c.state);
            match c.health.as_deref() {
                Some("healthy") | None => {}
                Some(health) => {
                    let _ = write!(item, ", **{health}**");
                }
            }
            if c.health.as_deref() == Some("healthy") {
                item.push_str(", healthy");
            }
            if c.restart_count > 0 {
                let _ = write!(
                    item,
                    ", {}",
                    plural(c.restart_count as usize, "restart", "restarts")
                );
            }
            if let Some(cpu) = c.cpu_percent {
                let _ = write!(item, ", CPU {cpu:.1}%");
            }
            if let Some(mb) = c.memory_mb {
                let _ = write!(item, ", {mb} MB");
            }
            item
        })
        .collect();
    push_capped_list(out, &items, MAX_LIST_ITEMS);
}

pub(super) fn render_tmux(out: &mut String, tmux: &TmuxSection) {
    if !open(out, "tmux", tmux.status, tmux.reason.as_deref()) {
        return;
    }
    if tmux.sessions.is_empty() {
        out.push_str("No sessions.\n");
        return;
    }
    let _ = writeln!(out, "{}:\n", session_count(tmux.sessions.len()));
    for session in tmux.sessions.iter().take(MAX_LIST_ITEMS) {
        let _ = writeln!(out, "- {}", session_item(session));
        let panes: Vec<String> = session
            .panes
            .iter()
            .map(|pane| {
                let place = format!(
                    "pane {} ({}.{})",
                    pane.id, pane.window_index, pane.pane_index
                );
                if pane.dead {
                    let how = match (pane.exit_status, pane.exit_signal) {
                        (Some(code), _) => format!("exit status {code}"),
                        (None, Some(signal)) => format!("killed by signal {signal}"),
                        (None, None) => "exit status unknown".to_owned(),
                    };
                    format!(
                        "{place}: **dead** ({how}), was {}, pid {}",
                        inline_code(&pane.current_command),
                        pane.pid
                    )
                } else {
                    format!(
                        "{place}: {}, pid {}",
                        inline_code(&pane.current_command),
                        pane.pid
                    )
                }
            })
            .collect();
        for pane in panes.iter().take(MAX_LIST_ITEMS) {
            let _ = writeln!(out, "  - {pane}");
        }
        if panes.len() > MAX_LIST_ITEMS {
            let _ = writeln!(out, "  - … and {} more", panes.len() - MAX_LIST_ITEMS);
        }
    }
    if tmux.sessions.len() > MAX_LIST_ITEMS {
        let _ = writeln!(out, "- … and {} more", tmux.sessions.len() - MAX_LIST_ITEMS);
    }
}

/// `alpha: 1 window, detached, created …, last activity … (idle 30m)`.
fn session_item(session: &TmuxSession) -> String {
    let windows = plural(session.windows as usize, "window", "windows");
    let attached = if session.attached {
        "attached"
    } else {
        "detached"
    };
    format!(
        "{}: {windows}, {attached}, created {}, last activity {} (idle {})",
        session.name,
        timestamp(session.created),
        timestamp(session.last_activity),
        duration(session.idle_seconds)
    )
}
