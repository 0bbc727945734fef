mod api_keys;
mod errors;
mod helpers;
mod identity;
mod operations;
mod pass_check;
mod passes;
mod templates;
