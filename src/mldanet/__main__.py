from mldanet.cli import main

raise SystemExit(main())
