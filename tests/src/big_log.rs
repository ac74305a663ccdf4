//! Big logs for benchmarks: an export file grown from a small real one to N events, ready for
//! `eventstore_config::transfer::import` (the fast bulk path into an empty store).

use eventstore_config::transfer::{End, ExportedEvent, Line};

/// Deposits per copied wallet.
pub const DEPOSITS_PER_WALLET: u64 = 99;

/// `seed` (a full export) with copies of its last wallet's events appended until it holds `n`
/// events: each copy a fresh wallet (a copied `WalletOpened`, then [`DEPOSITS_PER_WALLET`]
/// copied `FundsDeposited`). `tweak` may change each copied event (its metadata, say) after
/// its aggregate id, version and time are set.
pub fn grow(
    seed: &[u8],
    n: u64,
    mut tweak: impl FnMut(&mut ExportedEvent),
) -> anyhow::Result<Vec<u8>> {
    let lines: Vec<Line> = seed
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(serde_json::from_slice)
        .collect::<Result<_, _>>()?;
    let events: Vec<&ExportedEvent> = lines
        .iter()
        .filter_map(|l| match l {
            Line::Event(e) => Some(e),
            _ => None,
        })
        .collect();
    let opened = events
        .iter()
        .rfind(|e| e.event_type == "WalletOpened")
        .ok_or_else(|| anyhow::anyhow!("no WalletOpened in the seed"))?;
    let deposited = events
        .iter()
        .rfind(|e| e.event_type == "FundsDeposited")
        .ok_or_else(|| anyhow::anyhow!("no FundsDeposited in the seed"))?;
    let mut out = Vec::with_capacity(n as usize * 600);
    let mut count = 0u64;
    let push = |line: &Line, out: &mut Vec<u8>| -> anyhow::Result<()> {
        serde_json::to_writer(&mut *out, line)?;
        out.push(b'\n');
        Ok(())
    };
    let mut keys = Vec::new();
    for line in &lines {
        match line {
            Line::Header(_) => push(line, &mut out)?,
            Line::Event(_) if count < n => {
                push(line, &mut out)?;
                count += 1;
            }
            Line::Key(_) => keys.push(line.clone()),
            _ => {}
        }
    }
    while count < n {
        let id = uuid::Uuid::now_v7().to_string();
        let mut version = 0u64;
        for template in std::iter::once(*opened).chain(std::iter::repeat_n(
            *deposited,
            DEPOSITS_PER_WALLET as usize,
        )) {
            if count == n {
                break;
            }
            version += 1;
            let mut event = template.clone();
            event.aggregate_id = id.clone();
            event.version = version;
            event.recorded_at = chrono::Utc::now();
            if event.event_type == "WalletOpened" {
                if let Some(data) = event.payload.pointer_mut("/data/account_id") {
                    *data = serde_json::Value::String(id.clone());
                }
            }
            tweak(&mut event);
            push(&Line::Event(event), &mut out)?;
            count += 1;
        }
    }
    for key in &keys {
        push(key, &mut out)?;
    }
    push(
        &Line::End(End {
            events: count,
            keys: keys.len() as u64,
        }),
        &mut out,
    )?;
    Ok(out)
}
