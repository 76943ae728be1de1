-- Emit: appends one status event that no other transition writes. ARGV: field/value pairs.
return emit(ARGV)
