//! The log pipeline. Collector: [`source`] (files and the journal, every
//! `[[log_source]]`) -> outbound. Compute: [`detector`] (parse, rules) ->
//! alert.

pub mod detector;
pub mod source;
