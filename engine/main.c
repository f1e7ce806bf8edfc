/* The sluice executable. Everything else lives in the library. */
#include "engine/cli.h"

int main(int argc, char **argv)
{
    return sl__cli_main(argc, argv);
}
