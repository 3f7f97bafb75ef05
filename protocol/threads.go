package protocol

// TypeThread pages the replies of a thread: {conv, thread, after | before,
// limit}, answered by messages with thread set.
const TypeThread = "thread"
