//! Many copies of one call started at once, for the cases that want a single winner.

use std::sync::Arc;

/// Runs `n` copies of `f` at once and returns their answers.
pub async fn race<F, Fut, T>(n: usize, f: F) -> Vec<T>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let barrier = Arc::new(tokio::sync::Barrier::new(n));
    let mut tasks = Vec::new();
    for i in 0..n {
        let fut = f(i);
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            fut.await
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

/// How many of the racers got `true`.
pub fn winners(results: &[bool]) -> usize {
    results.iter().filter(|w| **w).count()
}
