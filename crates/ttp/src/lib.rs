//! Reference TTP of pseudoform (being built).
