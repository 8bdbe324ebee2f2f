//! `mp migrate`.

use std::io::Write;

use crate::commands::Context;
use crate::config::ensure_writable_dir;
use crate::error::AppError;
use crate::wiring;

pub(crate) async fn run(ctx: &Context, out: &mut dyn Write) -> Result<(), AppError> {
    ensure_writable_dir(&ctx.data_dir)?;
    let store = wiring::open_store(&ctx.data_dir).await?;
    // `open` already applied pending migrations; a second pass proves the schema is current.
    let applied = store
        .migrate()
        .await
        .map_err(|e| AppError::Failed(e.into()))?;
    store.close().await;
    writeln!(
        out,
        "metadata database {} is up to date{}",
        wiring::database_path(&ctx.data_dir).display(),
        if applied.is_empty() {
            String::new()
        } else {
            format!(" (applied {applied:?})")
        }
    )?;
    Ok(())
}
