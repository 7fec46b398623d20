//! The parts of `pseudoform-demo` that its tests use: the provider portal.

pub mod portal;
