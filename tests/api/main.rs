mod api_keys;
mod errors;
mod helpers;
mod operations;
mod pass_check;
mod passes;
