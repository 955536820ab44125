# tutorial-blocks.awk: the fenced blocks of TUTORIAL.md that the tests
# check, with the comment line that says how. For each block it prints
#   BLOCK <TAB> line <TAB> language <TAB> annotation
# then each line of the block prefixed with "|", then END. A block with no
# annotation comes out with an empty one, for the tests to refuse. Blocks
# may be indented (inside a list); the indentation is not part of them.
#
# Annotations, on the line just before the opening fence:
#   <!-- from FILE -->           the block is a verbatim excerpt of FILE
#   <!-- diff OLD NEW -->        the block's hunks are in `diff -u OLD NEW`
#   <!-- run SCENARIO -->        console: run the $ commands, check output
#   <!-- run SCENARIO background -->  console: start it and leave it running
#   <!-- run by .ci/run -->      console: too slow for a test; CI runs it

/^ *```/ {
    if (!inside) {
        inside = 1
        indent = index($0, "`") - 1
        lang = substr($0, indent + 4)
        note = previous
        sub(/^ */, "", note)
        if (note ~ /^<!-- .* -->$/)
            note = substr(note, 6, length(note) - 9)
        else
            note = ""
        printf "BLOCK\t%d\t%s\t%s\n", NR, lang, note
    } else {
        inside = 0
        print "END"
    }
    previous = $0
    next
}
inside { print "|" substr($0, indent + 1) }
{ previous = $0 }
