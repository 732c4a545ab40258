# Writes the binary file IN as a C array `events_descriptor_set` into OUT.
file(READ ${IN} hex HEX)
string(LENGTH "${hex}" n)
math(EXPR size "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n" body "${body}")
file(WRITE ${OUT} "/* Generated from ${IN}: the FileDescriptorSet of the API. */\n#include <stddef.h>\nconst unsigned char events_descriptor_set[] = {\n${body}\n};\nconst size_t events_descriptor_set_len = ${size};\n")
