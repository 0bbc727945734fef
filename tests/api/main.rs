mod api_keys;
mod errors;
mod helpers;
mod operations;
