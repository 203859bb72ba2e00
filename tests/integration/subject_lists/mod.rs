//! The subject list at scale: every query plan reads through an index of
//! the store's own definition, every plan returns exactly the rows and
//! order of the literal rules (SPEC section 4) page by page, past the count
//! limit too, and the totals clients read.

mod at_scale;
mod plans;
mod totals;
