//! Recycled byte buffers: chunks and COPY batches reuse a handful of allocations, so a
//! long load neither page-faults fresh memory for every batch nor grows the heap.

use crossbeam_channel::{Receiver, Sender, bounded};

pub struct BufferPool {
    free: (Sender<Vec<u8>>, Receiver<Vec<u8>>),
}

impl BufferPool {
    /// A pool keeping at most `count` idle buffers.
    pub fn new(count: usize) -> BufferPool {
        BufferPool {
            free: bounded(count),
        }
    }

    /// An empty buffer with room for at least `capacity` bytes.
    pub fn take(&self, capacity: usize) -> Vec<u8> {
        match self.free.1.try_recv() {
            Ok(mut buffer) => {
                buffer.reserve(capacity);
                buffer
            }
            Err(_) => Vec::with_capacity(capacity),
        }
    }

    /// Gives a buffer back; beyond the pool's size it is freed.
    pub fn give(&self, mut buffer: Vec<u8>) {
        buffer.clear();
        let _ = self.free.0.try_send(buffer);
    }
}
