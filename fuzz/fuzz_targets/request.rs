//! Every RPC's request, decoded from arbitrary bytes and converted as its handler does:
//! no panic, and either a command or a refusal naming each violated field.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &[u8]| herald_fuzz::convert(input));
